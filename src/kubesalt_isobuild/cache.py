"""Where artifacts come from: the upstream, an offline cache directory, or both.

Cache layout (``--from DIR``)::

    DIR/deb/<name>_<version>_<arch>.deb        DIR/rpm/<name>-<version>.<arch>.rpm
    DIR/wheels/<file>.whl|.tar.gz              DIR/wheels-built/<sdist sha256>/<file>.whl
    DIR/images/                                one OCI image layout, one ref per image
    DIR/resolved/<kind>-<key>.yaml             dependency closures resolved online

Modes: no cache (everything from upstream, into a work directory), offline (``--from``: the
cache only; a missing artifact stops the build), and filling (``--from --fill-cache``: the
cache first, the upstream for what it lacks, stored into the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import yaml

from kubesalt_isobuild.errors import DigestMismatchError, MissingArtifactError
from kubesalt_isobuild.util import sha256_file

FILL_HINT = "run the build online with --from {cache} --fill-cache to put it in the cache"


class Store:
    """Gives each fetcher a verified local file, from the cache or from the upstream."""

    def __init__(self, root: Path, offline: bool, label: str | None = None):
        self.root = Path(root)
        self.offline = offline
        self.label = label or str(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, filename: str) -> Path:
        if "/" in filename or filename in ("", ".", ".."):
            raise ValueError(f"bad artifact file name {filename!r}")
        return self.root / kind / filename

    def lookup(self, artifact: str, kind: str, filename: str, sha256: str | None) -> Path | None:
        """The cached file if present; verified against ``sha256`` when pinned."""
        path = self.path(kind, filename)
        if not path.is_file():
            if self.offline:
                raise MissingArtifactError(
                    artifact,
                    f"not in the offline cache (looked for {path})",
                    FILL_HINT.format(cache=self.label),
                )
            return None
        if sha256 is not None:
            actual = sha256_file(path)
            if actual != sha256:
                raise DigestMismatchError(artifact, sha256, actual, f"cache file {path}")
        return path

    def store(self, kind: str, filename: str, src: Path) -> Path:
        dest = self.path(kind, filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return dest

    # Dependency closures -------------------------------------------------------------

    def closure_path(self, kind: str, key: str) -> Path:
        return self.root / "resolved" / f"{kind}-{key}.yaml"

    def load_closure(self, kind: str, key: str) -> list[dict] | None:
        path = self.closure_path(kind, key)
        if not path.is_file():
            return None
        return yaml.safe_load(path.read_text())["packages"]

    def save_closure(self, kind: str, key: str, what: dict, packages: list[dict]) -> None:
        path = self.closure_path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"resolved": what, "packages": packages}
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    @property
    def images(self) -> Path:
        return self.root / "images"


def closure_key(what: dict) -> str:
    """A stable key for a closure request (roots, sources, architecture)."""
    blob = json.dumps(what, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
