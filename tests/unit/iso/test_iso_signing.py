"""The build's GnuPG home: short enough for gpg-agent's sockets, private, removed at the end."""

from __future__ import annotations

import stat

from kubesalt_isobuild.signing import Signer

# sun_path holds 108 bytes with the final NUL; gpg-agent's longest socket name is this one.
LONGEST_SOCKET = "S.gpg-agent.browser"


def test_the_default_home_leaves_room_for_gpg_agents_sockets():
    signer = Signer()
    try:
        assert len(str(signer.home / LONGEST_SOCKET)) < 108
        assert stat.S_IMODE(signer.home.stat().st_mode) == 0o700
        assert signer.home.parent.as_posix() == "/tmp"
    finally:
        signer.close()
    assert not signer.home.exists()


def test_a_given_home_is_used_and_made_private(tmp_path):
    signer = Signer(tmp_path / "deep" / "gnupg")
    assert signer.home == tmp_path / "deep" / "gnupg"
    assert stat.S_IMODE(signer.home.stat().st_mode) == 0o700
    signer.close()
    assert not signer.home.exists()
