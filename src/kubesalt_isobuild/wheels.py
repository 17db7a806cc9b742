"""Python wheels for the target interpreter: ``pip download`` of pinned ``name==version``.

A distribution published only as an sdist (Salt itself) is downloaded as the pinned sdist and
built into a wheel once, with the interpreter running the build (which must match the target
Python); the built wheel is kept in the cache, so offline builds reuse it.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from kubesalt_isobuild.cache import FILL_HINT, Store
from kubesalt_isobuild.errors import (
    ArtifactError,
    DigestMismatchError,
    MissingArtifactError,
    ToolError,
)
from kubesalt_isobuild.manifest import Flavour, Source, Wheel
from kubesalt_isobuild.util import run, sha256_file


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_of(filename: str) -> tuple[str, str] | None:
    """``(normalized name, version)`` of a wheel or sdist file name, else ``None``."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        if len(parts) >= 5:
            return normalize(parts[0]), parts[1]
        return None
    for ext in (".tar.gz", ".zip"):
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            name, _, version = stem.rpartition("-")
            if name:
                return normalize(name), version
    return None


def candidates(directory: Path, wheel: Wheel) -> list[Path]:
    if not directory.is_dir():
        return []
    want = (normalize(wheel.name), wheel.version)
    out = []
    for path in sorted(directory.iterdir()):
        is_sdist = not path.name.endswith(".whl")
        if path.is_file() and dist_of(path.name) == want and is_sdist == wheel.sdist:
            out.append(path)
    return out


def pip_command(
    group: list[Wheel], hashed: bool, flavour: Flavour, source: Source, dest: Path, reqfile: Path
) -> list[str]:
    """The ``pip download`` command for a group of pinned distributions (all wheels or all
    sdists). Only the sdists themselves are taken from source: their build dependencies
    may come as wheels."""
    cmd = [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--quiet",
           "--disable-pip-version-check", "--dest", str(dest), "--index-url", source.url]  # fmt: skip
    if source.cafile:
        cmd += ["--cert", source.cafile]
    if group[0].sdist:
        cmd += ["--no-binary=" + ",".join(sorted(w.name for w in group))]
    else:
        py = flavour.python
        cmd += [
            "--only-binary=:all:",
            "--python-version",
            py.version,
            "--implementation",
            py.implementation,
        ]
        for platform in py.platforms:
            cmd += ["--platform", platform]
    if hashed:
        cmd += ["--require-hashes"]
    cmd += ["-r", str(reqfile)]
    return cmd


def requirement_line(wheel: Wheel) -> str:
    line = f"{wheel.name}=={wheel.version}"
    if wheel.sha256:
        line += f" --hash=sha256:{wheel.sha256}"
    return line + "\n"


def _lookup(wheel: Wheel, store: Store) -> Path | None:
    found = candidates(store.root / "wheels", wheel)
    if wheel.sha256:
        for path in found:
            if sha256_file(path) == wheel.sha256:
                return path
        if found and store.offline:
            actual = sha256_file(found[0])
            raise DigestMismatchError(wheel.label, wheel.sha256, actual, f"cache file {found[0]}")
    elif len(found) == 1:
        return found[0]
    elif len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ArtifactError(
            wheel.label, f"unpinned and ambiguous in the cache: {names}", "pin its sha256"
        )
    if store.offline:
        raise MissingArtifactError(
            wheel.label,
            f"not in the offline cache ({store.root / 'wheels'})",
            FILL_HINT.format(cache=store.label),
        )
    return None


def fetch_wheel(
    wheel: Wheel, flavour: Flavour, source: Source, store: Store, tmp: Path
) -> tuple[Path, str]:
    """A verified local file of ``wheel`` (a wheel or sdist) and its sha256."""
    return fetch_wheels([wheel], flavour, source, store, tmp)[0]


def fetch_wheels(
    items: list[Wheel], flavour: Flavour, source: Source, store: Store, tmp: Path
) -> list[tuple[Path, str]]:
    """Verified local files of ``items``, in order: from the cache, else from the index.

    What the cache lacks is downloaded with one ``pip download`` per kind (wheels, sdists;
    pinned, unpinned), so a wheelhouse of a hundred files costs a few seconds.
    """
    found: dict[Wheel, Path] = {}
    groups: dict[tuple[bool, bool], list[Wheel]] = {}
    for wheel in items:
        path = _lookup(wheel, store)
        if path is None:
            groups.setdefault((wheel.sdist, wheel.sha256 is not None), []).append(wheel)
        else:
            found[wheel] = path
    for (sdist, hashed), group in sorted(groups.items()):
        found.update(_download(group, sdist, hashed, flavour, source, store, tmp))
    return [(found[w], w.sha256 or sha256_file(found[w])) for w in items]


def _culprit(group: list[Wheel], text: str) -> Wheel | None:
    for wheel in group:
        if wheel.sha256 and re.search(rf"Expected sha256 {wheel.sha256}", text):
            return wheel
    pattern = (
        r"(?:No matching distribution found for|satisfies the requirement) ([A-Za-z0-9._-]+)=="
    )
    for match in re.finditer(pattern, text):
        for wheel in group:
            if normalize(wheel.name) == normalize(match.group(1)):
                return wheel
    return None


def _download(group, sdist, hashed, flavour, source, store, tmp) -> dict[Wheel, Path]:
    work = Path(tempfile.mkdtemp(prefix="pip-", dir=tmp))
    label = group[0].label if len(group) == 1 else f"{len(group)} Python distributions"
    try:
        reqfile = work / "requirements.txt"
        reqfile.write_text("".join(requirement_line(w) for w in group))
        try:
            run(
                pip_command(group, hashed, flavour, source, work / "dl", reqfile),
                what=f"pip download {label}",
            )
        except ToolError as err:
            text = err.output
            culprit = _culprit(group, text)
            name = culprit.label if culprit else label
            if "THESE PACKAGES DO NOT MATCH THE HASHES" in text:
                got = re.search(r"Got\s+([0-9a-f]{64})", text)
                expected = culprit.sha256 if culprit else "?"
                raise DigestMismatchError(
                    name, expected or "?", got.group(1) if got else "?", f"the index {source.url}"
                ) from err
            if "No matching distribution" in text or "Could not find a version" in text:
                raise MissingArtifactError(
                    name, f"no matching file on {source.url} for Python {flavour.python.version}"
                ) from err
            raise ArtifactError(name, f"pip download failed:\n{text.strip()}") from err
        files = {dist_of(p.name) + (p.name.endswith(".whl"),): p for p in (work / "dl").iterdir()}
        out = {}
        for wheel in group:
            path = files.get((normalize(wheel.name), wheel.version, not wheel.sdist))
            if path is None:
                raise MissingArtifactError(
                    wheel.label, f"pip did not download it from {source.url}"
                )
            actual = sha256_file(path)
            if wheel.sha256 and actual != wheel.sha256:
                raise DigestMismatchError(
                    wheel.label, wheel.sha256, actual, f"the download from {source.url}"
                )
            out[wheel] = store.store("wheels", path.name, path)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_sdist(
    wheel: Wheel,
    sdist: Path,
    sdist_sha: str,
    flavour: Flavour,
    source: Source,
    store: Store,
    tmp: Path,
) -> Path:
    """The wheel built from a verified sdist: from the cache, or built now and cached."""
    built_dir = store.root / "wheels-built" / sdist_sha
    found = sorted(built_dir.glob("*.whl")) if built_dir.is_dir() else []
    if found:
        return found[0]
    if store.offline:
        raise MissingArtifactError(
            wheel.label,
            f"no wheel built from this sdist in {built_dir}",
            FILL_HINT.format(cache=store.label),
        )
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != flavour.python.version:
        raise ArtifactError(
            wheel.label,
            f"is an sdist to build for Python {flavour.python.version}, but the build runs {running}",
            f"run iso/build with Python {flavour.python.version}",
        )
    work = Path(tempfile.mkdtemp(prefix="wheel-", dir=tmp))
    try:
        cmd = [sys.executable, "-m", "pip", "wheel", "--isolated", "--no-deps", "--quiet",
               "--disable-pip-version-check", "--index-url", source.url, "--wheel-dir", str(work), str(sdist)]  # fmt: skip
        if source.cafile:
            cmd[4:4] = ["--cert", source.cafile]
        run(cmd, what=f"build a wheel from {wheel.label}")
        wheels = sorted(work.glob("*.whl"))
        if len(wheels) != 1:
            raise ArtifactError(wheel.label, f"building gave {len(wheels)} wheels, expected one")
        built_dir.mkdir(parents=True, exist_ok=True)
        dest = built_dir / wheels[0].name
        shutil.copyfile(wheels[0], dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)
