"""Rendered files and directories, and the atomic writer.

Renderers return `{absolute path: RenderedFile | RenderedDirectory}`; `write_tree` puts that
on disk under a destination root, each file written to a temporary file in the same
directory, flushed, given its mode and renamed over the target, so that a reader (the
kubelet watching /etc/kubernetes/manifests) never sees a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from kubesalt.kubeadm import RenderError


@dataclass(frozen=True)
class RenderedFile:
    """The content and mode of one file."""

    content: bytes
    mode: int


@dataclass(frozen=True)
class RenderedDirectory:
    """The mode of one directory."""

    mode: int


Rendered = dict[str, RenderedFile | RenderedDirectory]


def destination(root: str, path: str) -> str:
    """Where the absolute `path` lands under `root`."""
    if not os.path.isabs(path):
        raise RenderError(f"rendered path {path!r} is not absolute")
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def write_file_atomic(target: str, content: bytes, mode: int) -> None:
    """Write `content` to `target` atomically (temporary file + rename) with `mode`."""
    directory = os.path.dirname(target)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_tree(rendered: Rendered, root: str) -> list[str]:
    """Write every directory then every file of `rendered` under `root`; return the paths
    written. Directories get their mode even when they already exist."""
    written = []
    for path in sorted(p for p, item in rendered.items() if isinstance(item, RenderedDirectory)):
        target = destination(root, path)
        os.makedirs(target, exist_ok=True)
        os.chmod(target, rendered[path].mode)
    for path in sorted(p for p, item in rendered.items() if isinstance(item, RenderedFile)):
        target = destination(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        item = rendered[path]
        write_file_atomic(target, item.content, item.mode)
        written.append(target)
    return written
