"""A minimal builder of pure-Python wheels (PEP 427), with no build backend.

The ISO ships the ``kubesalt`` package itself as a wheel (docs/decisions.md), installed into the
Salt virtualenv on every node; building it this way needs neither setuptools nor the network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

# 1980-01-01, the earliest time a zip entry can hold: the wheel is reproducible.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(
    name: str,
    version: str,
    package_dir: Path,
    dest: Path,
    requires: list[str] = (),
    summary: str = "",
    generated: dict[str, bytes] | None = None,
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` holding ``package_dir`` into ``dest``,
    plus ``generated`` files (paths relative to ``package_dir``, such as data written by the
    build); a generated file replaces a file of the same path."""
    dist = name.replace("-", "_")
    files: list[tuple[str, bytes]] = []
    base = package_dir.parent
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fname in sorted(filenames):
            if fname.endswith((".pyc", ".pyo")):
                continue
            full = Path(dirpath) / fname
            files.append((full.relative_to(base).as_posix(), full.read_bytes()))
    extra = {f"{package_dir.name}/{rel}": data for rel, data in (generated or {}).items()}
    files = [(path, data) for path, data in files if path not in extra]
    files += sorted(extra.items())
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        meta.append(f"Summary: {summary}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    files.append((f"{info}/METADATA", ("\n".join(meta) + "\n").encode()))
    wheel_meta = "Wheel-Version: 1.0\nGenerator: kubesalt_isobuild.pywheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files.append((f"{info}/WHEEL", wheel_meta.encode()))
    files.append((f"{info}/top_level.txt", f"{package_dir.name}\n".encode()))
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files)
    record += f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files:
            entry = zipfile.ZipInfo(path, date_time=ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return out
