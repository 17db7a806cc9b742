"""The archive check with real gpg, gpgv and bash: an archive tree signed as iso/build signs
it, then changed as an attacker or a damaged copy would change it.

bootstrap.sh must refuse before it runs anything of the archive (its kubesalt wheel here
only writes a marker file); kubesalt.bootstrap.archive.verify (run by the archive phase on
every run) must refuse a changed, an unlisted or a badly signed file, and a bad VERSION."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubesalt.bootstrap import archive
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt_isobuild import pywheel, tree
from kubesalt_isobuild.signing import Signer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "KUBESALT_TEST_MARKER"
# The fake kubesalt the archive carries: it only says it ran.
FAKE_MAIN = f"import os, pathlib\npathlib.Path(os.environ[{MARKER_ENV!r}]).write_text('ran')\n"


@pytest.fixture(scope="module")
def other_signer():
    key = Signer()
    key.generate()
    yield key
    key.close()


def _wheel(work: Path, name: str, files: dict[str, str], dest: Path, version: str = "1.0") -> str:
    package = work / f"{name}-{version}" / name.lower()
    for rel, text in {"__init__.py": "", **files}.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text)
    return f"wheels/{pywheel.build_wheel(name, version, package, dest).name}"


def _fake_kubesalt(work: Path, dest: Path, version: str = "1.0", says: str = "ran") -> str:
    main = FAKE_MAIN.replace("'ran'", repr(says))
    files = {"bootstrap/__init__.py": "", "bootstrap/__main__.py": main}
    return _wheel(work, "kubesalt", files, dest, version)


def sign(root: Path, signer: Signer) -> None:
    """Write SHA256SUMS and its signature, as iso/build does."""
    tree.write_sums(root)
    tree.sign_sums(root, signer)


def make_archive(root: Path, signer: Signer, version: str = "9.8.7") -> None:
    """The parts bootstrap.sh reads, three wheels (a fake kubesalt), bootstrap.sh, signed."""
    for rel in archive.REQUIRED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel not in (archive.WHEELS_DIR, archive.PRODUCT, archive.KEYRING, archive.SUMS,
                       archive.SUMS_SIGNATURE):  # fmt: skip
            path.write_text(f"{rel}\n")
    work = root.parent / "wheel-sources"
    wheels = root / archive.WHEELS_DIR
    own = _fake_kubesalt(work, wheels)
    libraries = (_wheel(work, "PyYAML", {}, wheels), _wheel(work, "netaddr", {}, wheels))
    signer.export_public(root / archive.KEYRING, armor=False)
    shutil.copy2(ROOT / "scripts" / "bootstrap.sh", root / "bootstrap.sh")
    (root / archive.PRODUCT).write_text(
        tree.product_text("kubesalt", version, "test", datetime.now(UTC), "lab", own, libraries)
    )
    sign(root, signer)


def run_bootstrap(root: Path, marker: Path, *args: str, env: dict | None = None):
    environment = {k: v for k, v in os.environ.items() if k != archive.FINGERPRINT_ENV}
    environment.update({MARKER_ENV: str(marker), **(env or {})})
    return subprocess.run(
        ["bash", str(root / "bootstrap.sh"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def signed(tmp_path, signer) -> Path:
    root = tmp_path / "archive"
    make_archive(root, signer)
    return root


def _kubesalt_wheel(root: Path) -> Path:
    return root / archive.WHEELS_DIR / "kubesalt-1.0-py3-none-any.whl"


# -- bootstrap.sh: nothing of the archive runs before it is verified -----------------------


def test_bootstrap_sh_runs_the_wheel_of_a_good_archive_with_or_without_a_fingerprint(
    tmp_path, signed, signer
):
    marker = tmp_path / "ran"
    workdirs = set(glob.glob("/tmp/kubesalt-bootstrap.*"))
    result = run_bootstrap(signed, marker)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran"
    # Its work directory (the checked copies) is removed once the phases are done.
    assert set(glob.glob("/tmp/kubesalt-bootstrap.*")) == workdirs
    marker.unlink()
    spaced = " ".join(signer.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    result = run_bootstrap(signed, marker, "--archive-fingerprint", spaced)
    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_bootstrap_sh_refuses_a_changed_wheel_before_running_it(tmp_path, signed):
    wheel = _kubesalt_wheel(signed)
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    result = run_bootstrap(signed, tmp_path / "ran")
    assert result.returncode == 1
    assert f"{signed}/wheels/{wheel.name} differs from SHA256SUMS" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_an_added_wheel_that_sorts_last_never_runs_and_is_refused_as_unlisted(tmp_path, signed):
    # The glob of old (the alphabetically last kubesalt-*.whl) picked this one.
    _fake_kubesalt(tmp_path / "added", signed / archive.WHEELS_DIR, "99", says="added")
    marker = tmp_path / "ran"
    result = run_bootstrap(signed, marker)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "ran"  # the wheel product.txt names
    with pytest.raises(BootstrapError, match=r"wheels/kubesalt-99-py3-none-any.whl: not listed"):
        archive.verify(str(signed))


def test_bootstrap_sh_refuses_a_bad_signature(tmp_path, signed, other_signer):
    other_signer.detach_sign(signed / archive.SUMS, signed / archive.SUMS_SIGNATURE)
    result = run_bootstrap(signed, tmp_path / "ran")
    assert result.returncode == 1
    assert "SHA256SUMS.asc is not a good signature" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_bootstrap_sh_refuses_an_archive_signed_by_another_key_than_the_operators(
    tmp_path, signed, other_signer
):
    env = {archive.FINGERPRINT_ENV: other_signer.fingerprint}
    result = run_bootstrap(signed, tmp_path / "ran", env=env)
    assert result.returncode == 1
    assert f"not by {other_signer.fingerprint} (the fingerprint you gave)" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_bootstrap_sh_refuses_an_unsigned_archive(tmp_path, signed):
    (signed / archive.SUMS_SIGNATURE).unlink()
    result = run_bootstrap(signed, tmp_path / "ran")
    assert result.returncode == 1
    assert "SHA256SUMS.asc is missing" in result.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("version", ["1.0;touch${IFS}/tmp/x", "../../etc", "1.0 2"])
def test_bootstrap_sh_refuses_a_bad_version_even_when_signed(tmp_path, signer, version):
    root = tmp_path / "archive"
    make_archive(root, signer, version=version)
    result = run_bootstrap(root, tmp_path / "ran")
    assert result.returncode == 1
    assert "VERSION is not a kubesalt version" in result.stderr
    assert not (tmp_path / "ran").exists()
    with pytest.raises(BootstrapError, match="is not a kubesalt version"):
        archive.describe(str(root), str(root), "directory")


# -- archive.verify: every file, on every run -----------------------------------------------


def test_verify_accepts_a_good_archive_and_names_its_key(signed, signer):
    assert archive.verify(str(signed)) == signer.fingerprint
    assert archive.verify(str(signed), signer.fingerprint.lower()) == signer.fingerprint


def test_verify_refuses_a_changed_file(signed):
    (signed / "salt" / "top.sls").write_text("changed\n")
    with pytest.raises(BootstrapError, match=r"(?s)1 problem.*salt/top.sls: sha256 differs"):
        archive.verify(str(signed))


def test_verify_refuses_an_unlisted_file_and_a_symlink(signed):
    (signed / "salt" / "evil.sls").write_text("cmd.run: []\n")
    (signed / "pillar" / "link").symlink_to("/etc/shadow")
    with pytest.raises(BootstrapError) as refused:
        archive.verify(str(signed))
    assert "pillar/link: not listed in SHA256SUMS" in str(refused.value)
    assert "salt/evil.sls: not listed in SHA256SUMS" in str(refused.value)


def test_verify_refuses_sums_changed_after_signing(signed):
    (signed / "salt" / "top.sls").write_text("changed\n")
    tree.write_sums(signed)  # the attacker can rewrite SHA256SUMS, not its signature
    with pytest.raises(BootstrapError, match="is not a good signature"):
        archive.verify(str(signed))


def test_verify_refuses_another_key_than_the_operators(signed, signer, other_signer):
    with pytest.raises(BootstrapError, match=f"signed by key {signer.fingerprint}, not by"):
        archive.verify(str(signed), other_signer.fingerprint)


def test_verify_refuses_an_archive_resigned_with_its_own_keyring_replaced(
    signed, signer, other_signer
):
    """Whoever replaces the keyring and re-signs passes without a fingerprint (the
    keyring is in the archive it vouches for), never with the operator's one."""
    other_signer.export_public(signed / archive.KEYRING, armor=False)
    sign(signed, other_signer)
    assert archive.verify(str(signed)) == other_signer.fingerprint
    with pytest.raises(BootstrapError, match="not by"):
        archive.verify(str(signed), signer.fingerprint)
