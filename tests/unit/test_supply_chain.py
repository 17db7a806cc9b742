"""The supply chain, without real programs: the archive's version, product.txt and
SHA256SUMS as bootstrap.sh and the archive phase read them; the registry's served and fill
configurations; the digests the ISO build records for static pods (issue 16, items 1 and 3).
The same checks with gpg, gpgv, bash and the registry: tests/integration/test_archive_signature.py
and test_registry_readonly.py."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from kubesalt.bootstrap import archive, services
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.kubeadm import RenderError, images, staticpod
from kubesalt_isobuild import build, pywheel, tree

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "c" * 64


# -- VERSION and product.txt ---------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.1.0", "1.2.3", "1.2.3-rc1", "1.2.3+lab", "1.2.3.dev2"])
def test_a_plain_version_is_accepted(version):
    assert archive.check_version(version, "product.txt") == version


@pytest.mark.parametrize(
    "version",
    ["1.2", "1.2.3\n", "1.2.3 x", "1.2.3;reboot", "1.2.3/../../etc", "1.2.3-", "$(id)",
     "1.2.3'", "1.2.3..4", "1.2." + "3" * 70, ""],
)  # fmt: skip
def test_a_version_that_could_leave_a_path_or_a_shell_word_is_refused(version):
    with pytest.raises(BootstrapError, match=r"product.txt: VERSION .* is not a kubesalt version"):
        archive.check_version(version, "product.txt")


def test_parse_product_validates_the_version_first():
    with pytest.raises(BootstrapError, match=r"p: VERSION '1.0;rm' is not a kubesalt version"):
        archive.parse_product("NAME=kubesalt\nVERSION=1.0;rm\n", "p")


def test_parse_product_refuses_a_key_given_twice():
    text = "NAME=kubesalt\nVERSION=1.2.3\n VERSION = 1.2.4\n"
    with pytest.raises(BootstrapError, match="p: VERSION is given twice"):
        archive.parse_product(text, "p")


@pytest.mark.parametrize(
    "path", ["../kubesalt.whl", "wheels/sub/k.whl", "wheels/k.tar.gz", "k.whl"]
)
def test_parse_product_refuses_a_wheel_outside_wheels(path):
    with pytest.raises(BootstrapError, match=r"KUBESALT_WHEEL names .* not a file wheels/"):
        archive.parse_product(f"NAME=kubesalt\nVERSION=1.2.3\nKUBESALT_WHEEL={path}\n", "p")


def test_kubesalt_wheel_is_the_one_product_txt_names(tmp_path):
    text = tree.product_text(
        "kubesalt", "1.2.3", "abc", datetime(2025, 1, 1, tzinfo=UTC), "lab",
        "wheels/kubesalt-1.2.3-py3-none-any.whl",
        ("wheels/PyYAML-6.0.2-cp311-cp311-manylinux.whl", "wheels/netaddr-1.3.0-py3-none-any.whl"),
    )  # fmt: skip
    (tmp_path / archive.PRODUCT).write_text(text)
    found = archive.Archive(str(tmp_path), str(tmp_path), "directory", "kubesalt", "1.2.3")
    assert archive.kubesalt_wheel(found) == f"{tmp_path}/wheels/kubesalt-1.2.3-py3-none-any.whl"
    fields = archive.parse_product(text, "p")
    assert fields[archive.LIBRARY_WHEELS].split() == [
        "wheels/PyYAML-6.0.2-cp311-cp311-manylinux.whl",
        "wheels/netaddr-1.3.0-py3-none-any.whl",
    ]
    (tmp_path / archive.PRODUCT).write_text("NAME=kubesalt\nVERSION=1.2.3\n")
    with pytest.raises(BootstrapError, match="names no KUBESALT_WHEEL"):
        archive.kubesalt_wheel(found)


def test_a_register_with_a_bad_version_is_refused(tmp_path):
    register = tmp_path / "archives.yaml"
    register.write_text(
        "archives:\n- {source: /x, root: /x, kind: directory, name: kubesalt, version: '1;id'}\n"
    )
    with pytest.raises(BootstrapError, match=r"archives.yaml: VERSION '1;id'"):
        archive.load_register(str(register))


def test_bootstrap_sh_holds_the_same_patterns_and_names():
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert f"version_pattern='{archive.VERSION_PATTERN}'" in script
    assert f"wheel_pattern='{archive.WHEEL_PATTERN}'" in script
    assert f"keyring={archive.KEYRING}" in script
    for name in (archive.SUMS_SIGNATURE, archive.FINGERPRINT_ENV, archive.KUBESALT_WHEEL,
                 archive.LIBRARY_WHEELS, f"{archive.VERSION_MAX}"):  # fmt: skip
        assert name in script
    # Nothing from the archive is found by a glob any more.
    assert "kubesalt-*.whl" not in script and "find " not in script


# -- SHA256SUMS ------------------------------------------------------------------------------


def _sums(root: Path, files: dict[str, bytes]) -> dict[str, str]:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def test_sums_problems_lists_changed_missing_unlisted_and_symlinked_files(tmp_path):
    listed = _sums(tmp_path, {"a": b"a", "d/b": b"b", "c": b"c"})
    (tmp_path / "a").write_bytes(b"changed")
    (tmp_path / "c").unlink()
    (tmp_path / "c").symlink_to(tmp_path / "a")
    (tmp_path / "d" / "new").write_bytes(b"new")
    (tmp_path / "linkdir").symlink_to(tmp_path / "d")
    for rel in (archive.SUMS, archive.SUMS_SIGNATURE):
        (tmp_path / rel).write_text("not listed, never reported\n")
    assert archive.sums_problems(str(tmp_path), listed) == [
        "a: sha256 differs",
        "c: missing or not a regular file",
        "d/new: not listed in SHA256SUMS",
        "linkdir: not listed in SHA256SUMS",
    ]


@pytest.mark.parametrize(
    "line",
    ["abc  salt/top.sls", f"{'a' * 64} salt/top.sls", f"{'a' * 64}  ../etc/passwd",
     f"{'a' * 64}  /etc/passwd", f"{'a' * 64}  salt//top.sls", f"{'A' * 64}  x"],
)  # fmt: skip
def test_parse_sums_refuses_a_line_it_cannot_check_exactly(line):
    with pytest.raises(BootstrapError, match=r"SHA256SUMS line 2: .* is not '<sha256>  <relative"):
        archive.parse_sums(f"{'0' * 64}  ok\n{line}\n", "SHA256SUMS")


def test_gpgv_status_gives_the_primary_key_of_good_signatures_only():
    status = (
        "[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 1234 someone\n"
        "[GNUPG:] VALIDSIG " + "1" * 40 + " 2025-01-01 0 0 4 0 22 10 00 " + "a" * 40 + "\n"
    )
    assert archive.valid_signers(status) == ["A" * 40]


def test_a_fingerprint_is_normalized_or_refused():
    spaced = " ".join(["ABCD"] * 10).lower()
    assert archive.normalize_fingerprint(spaced) == "ABCD" * 10
    assert archive.normalize_fingerprint("0x" + "1" * 40) == "1" * 40
    with pytest.raises(BootstrapError, match="is not 40 hex digits"):
        archive.normalize_fingerprint("ABCD1234")


def test_the_iso_build_does_not_list_the_signature_and_checks_as_bootstrap_does(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / archive.SUMS_SIGNATURE).write_text("signature\n")
    assert tree.write_sums(tmp_path) == 1
    assert tree.check_sums(tmp_path) == []


def test_the_iso_build_refuses_a_version_bootstrap_sh_would_refuse():
    assert build.checked_version("1.2.3+lab") == "1.2.3+lab"
    with pytest.raises(build.IsoBuildError, match=r"--version: VERSION '1.2/3'.*give another"):
        build.checked_version("1.2/3")


def test_product_txt_names_the_wheels_bootstrap_sh_runs():
    lock = [
        {"name": "kubesalt", "file": "wheels/kubesalt-1.2.3-py3-none-any.whl"},
        {"name": "salt", "file": "wheels/salt-3008.3-py3-none-any.whl"},
        {"name": "netaddr", "file": "wheels/netaddr-1.3.0-py3-none-any.whl"},
        {"name": "PyYAML", "file": "wheels/PyYAML-6.0.2-cp311.whl"},
    ]
    assert build.bootstrap_wheels(lock) == (
        "wheels/kubesalt-1.2.3-py3-none-any.whl",
        ("wheels/PyYAML-6.0.2-cp311.whl", "wheels/netaddr-1.3.0-py3-none-any.whl"),
    )
    assert build.bootstrap_wheels(lock[1:]) == ("", ())
    with pytest.raises(build.IsoBuildError, match="no wheel of pyyaml"):
        build.bootstrap_wheels(lock[:3])


# -- registry --------------------------------------------------------------------------------


def test_the_served_registry_is_read_only_and_the_fill_instance_has_no_tcp_port():
    served = yaml.safe_load(services.registry_config())
    assert served["storage"]["maintenance"] == {"readonly": {"enabled": True}}
    assert served["http"]["addr"] == "127.0.0.1:5000"
    fill = yaml.safe_load(services.registry_fill_config())
    assert fill["http"] == {
        "net": "unix",
        "addr": services.REGISTRY_FILL_SOCKET,
        "relativeurls": True,
    }
    assert "maintenance" not in fill["storage"]
    assert fill["storage"]["filesystem"] == served["storage"]["filesystem"]
    assert services.REGISTRY_FILL_SOCKET.startswith(services.REGISTRY_FILL_DIR + "/")


def test_nginx_proxies_only_reads_to_the_registry():
    text = services.nginx_config("198.51.100.10", [])
    block = text[text.index("location /v2/") :]
    assert "proxy_pass http://127.0.0.1:5000;" in block
    assert re.search(r"limit_except GET HEAD \{\s*deny all;", block)


def test_the_venv_writes_bytecode_outside_the_archives(tmp_path):
    """An extracted archive is writable by root: a __pycache__ left there by Salt (which
    imports the archive's modules) would be an unlisted file at the next check."""
    (tmp_path / services.PYCACHE_PTH).write_text(services.pycache_pth())
    code = f"import site, sys; site.addsitedir({str(tmp_path)!r}); print(sys.pycache_prefix)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == services.PYCACHE_PREFIX


# -- digests: the ISO build records them, static pods pin them --------------------------------


def test_the_iso_build_records_the_served_digest_of_each_pinned_image():
    lock = [
        {"ref": "registry.k8s.io/kube-apiserver:v1.33.5", "digest": DIGEST, "source_digest": "x"},
        {"ref": "lab.kubesalt.invalid/base:1", "digest": "sha256:" + "d" * 64},
    ]
    digests = build.archive_digests(lock)
    assert digests == {"registry.k8s.io/kube-apiserver:v1.33.5": DIGEST}
    parsed = images.parse_archive_digests(yaml.safe_load(images.archive_digests_text(digests)))
    assert parsed == digests


def test_the_kubesalt_wheel_carries_the_archive_digests(tmp_path):
    digests = {"registry.k8s.io/etcd:3.5.21-0": DIGEST}
    wheel = build.build_kubesalt_wheel(ROOT, "1.2.3", tmp_path, digests)
    with zipfile.ZipFile(wheel) as zf:
        data = yaml.safe_load(zf.read(f"kubesalt/{images.ARCHIVE_DIGESTS}"))
        record = zf.read("kubesalt-1.2.3.dist-info/RECORD").decode()
    assert data == {"images": digests}
    assert f"kubesalt/{images.ARCHIVE_DIGESTS}," in record


def test_a_generated_file_replaces_the_packaged_one(tmp_path):
    package = tmp_path / "src" / "demo"
    package.mkdir(parents=True)
    (package / "data.txt").write_text("from the tree")
    wheel = pywheel.build_wheel(
        "demo", "1.0", package, tmp_path / "out", generated={"data.txt": b"generated"}
    )
    with zipfile.ZipFile(wheel) as zf:
        assert [n for n in zf.namelist() if n == "demo/data.txt"] == ["demo/data.txt"]
        assert zf.read("demo/data.txt") == b"generated"


def test_a_bad_archive_digest_is_refused():
    with pytest.raises(RenderError, match=r"images.r:t is 'md5:1', not sha256"):
        images.parse_archive_digests({"images": {"r:t": "md5:1"}})


def test_static_pods_pin_the_digest_the_archive_serves(monkeypatch):
    version, pinned = images.parse_images(
        yaml.safe_load((ROOT / "src/kubesalt/data/images.yaml").read_text())
    )
    served = images.with_archive_digests(pinned, {"registry.k8s.io/kube-scheduler:v1.33.5": DIGEST})
    monkeypatch.setattr(images, "_load", lambda: (version, served))
    pod = staticpod.static_pod(
        "kube-scheduler", ["kube-scheduler"], probes={}, volumes=[], requests={"cpu": "100m"}
    )
    image = pod["spec"]["containers"][0]["image"]
    assert image == f"registry.k8s.io/kube-scheduler:v1.33.5@{DIGEST}"
    # Without the archive's digest (a source checkout), the tag alone, as kubeadm writes it.
    monkeypatch.setattr(images, "_load", lambda: (version, pinned))
    pod = staticpod.static_pod(
        "kube-scheduler", ["kube-scheduler"], probes={}, volumes=[], requests={"cpu": "100m"}
    )
    assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.33.5"
