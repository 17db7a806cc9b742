"""Digests of files on disk (the backup's members, the Salt virtualenv archive)."""

from __future__ import annotations

import hashlib

_CHUNK = 1 << 20


def file_sha256(path: str) -> tuple[str, int]:
    """(sha256, size) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
