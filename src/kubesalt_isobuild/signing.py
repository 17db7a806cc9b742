"""The build's OpenPGP key: imported from ``--gpg-key`` or generated, used to sign repositories."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from kubesalt_isobuild.errors import IsoBuildError, ToolError
from kubesalt_isobuild.util import run

UID = "kubesalt ISO signing key <kubesalt@localhost>"


class Signer:
    """A throwaway GnuPG home holding one secret key."""

    def __init__(self, home: Path | None = None):
        # gpg-agent puts its sockets in the home, and a socket path holds at most 107 bytes: by
        # default the home is a short new directory in /tmp, whatever the build's --out.
        self.home = (
            Path(home) if home else Path(tempfile.mkdtemp(prefix="kubesalt-gpg-", dir="/tmp"))
        )
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fingerprint = ""

    def gpg(self, *args: str, what: str = "gpg") -> str:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--no-tty",
               "--pinentry-mode", "loopback", "--passphrase", "", *args]  # fmt: skip
        return run(cmd, what=what)

    def _secret_fingerprints(self) -> list[str]:
        out = self.gpg("--with-colons", "--list-secret-keys", what="list the signing key")
        fprs, in_sec = [], False
        for line in out.splitlines():
            fields = line.split(":")
            if fields[0] == "sec":
                in_sec = True
            elif fields[0] == "fpr" and in_sec:
                fprs.append(fields[9])
                in_sec = False
        return fprs

    def import_key(self, keyfile: Path) -> str:
        if not Path(keyfile).is_file():
            raise IsoBuildError(f"--gpg-key {keyfile}: no such file; give an armored secret key")
        try:
            self.gpg("--import", str(keyfile), what=f"import the signing key {keyfile}")
        except ToolError as err:
            raise IsoBuildError(f"--gpg-key {keyfile}: cannot import it: {err}") from err
        fprs = self._secret_fingerprints()
        if len(fprs) != 1:
            raise IsoBuildError(
                f"--gpg-key {keyfile}: holds {len(fprs)} secret keys, expected exactly one"
            )
        self.fingerprint = fprs[0]
        return self.fingerprint

    def generate(self) -> str:
        self.gpg(
            "--quick-gen-key", UID, "ed25519", "sign", "never", what="generate the signing key"
        )
        self.fingerprint = self._secret_fingerprints()[0]
        return self.fingerprint

    def export_public(self, dest: Path, armor: bool) -> None:
        args = ["--armor"] if armor else []
        self.gpg(
            *args, "--output", str(dest), "--export", self.fingerprint, what="export the public key"
        )

    def export_secret(self, dest: Path) -> None:
        self.gpg("--armor", "--output", str(dest), "--export-secret-keys", self.fingerprint,
                 what="export the secret key")  # fmt: skip
        dest.chmod(0o600)

    def clearsign(self, src: Path, dest: Path) -> None:
        self.gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512", "--clearsign",
                 "--output", str(dest), str(src), what=f"sign {src.name}")  # fmt: skip

    def detach_sign(self, src: Path, dest: Path) -> None:
        self.gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512", "--armor",
                 "--detach-sign", "--output", str(dest), str(src), what=f"sign {src.name}")  # fmt: skip

    def close(self) -> None:
        """Stop this home's gpg-agent (started by gpg on demand) and remove the home."""
        with contextlib.suppress(OSError):
            subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                           capture_output=True, check=False, timeout=30)  # fmt: skip
        shutil.rmtree(self.home, ignore_errors=True)
