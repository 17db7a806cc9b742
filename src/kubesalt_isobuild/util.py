"""Small helpers: running programs, hashing files, HTTP downloads, timed steps."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kubesalt_isobuild.errors import IsoBuildError, ToolError

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(
    cmd: list[str],
    what: str = "",
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    input_text: str | None = None,
) -> str:
    """Run ``cmd``; return its stdout+stderr; raise :class:`ToolError` naming ``what``."""
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        raise IsoBuildError(f"{what or cmd[0]}: program {cmd[0]!r} not found; install it")
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=cwd,
        input=input_text,
        check=False,
    )
    if proc.returncode != 0:
        raise ToolError(cmd, proc.returncode, proc.stdout, what)
    return proc.stdout


def http_get(url: str, cafile: str | None = None, timeout: float = 60.0) -> bytes:
    """GET ``url``; raise ``FileNotFoundError`` on 404/410, ``OSError`` on other failures."""
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:  # noqa: S310
            return resp.read()
    except urllib.error.HTTPError as err:
        if err.code in (404, 410):
            raise FileNotFoundError(f"{url}: HTTP {err.code}") from err
        raise OSError(f"{url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise OSError(f"{url}: {err.reason}") from err


def http_download(url: str, dest: Path, cafile: str | None = None) -> None:
    """Download ``url`` to ``dest`` atomically (same errors as :func:`http_get`)."""
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
    tmp = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=120, context=ctx) as resp, open(tmp, "wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out, CHUNK)
    except urllib.error.HTTPError as err:
        tmp.unlink(missing_ok=True)
        if err.code in (404, 410):
            raise FileNotFoundError(f"{url}: HTTP {err.code}") from err
        raise OSError(f"{url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{url}: {err.reason}") from err
    os.replace(tmp, dest)


def url_join(base: str, rel: str) -> str:
    """Join a repository base URL and a relative path, keeping the base's path."""
    return base.rstrip("/") + "/" + rel.lstrip("/")


class Steps:
    """Prints each build step with its duration and keeps the timings."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout
        self.timings: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"==> {name}", file=self.stream, flush=True)
        start = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - start
            self.timings.append((name, took))
            state = "done" if ok else "FAILED"
            print(f"    {state} in {took:.1f}s: {name}", file=self.stream, flush=True)

    def info(self, text: str) -> None:
        print(f"    {text}", file=self.stream, flush=True)
