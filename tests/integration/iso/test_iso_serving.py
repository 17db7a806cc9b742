"""A built ISO served as the bootstrap node serves it: nginx with TLS in front of the
repositories and of the registry filled from the ISO's OCI layout; real clients install
from it (dnf into an installroot, apt-get into a throwaway root) and pull each image."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import iso_servers as servers
import pytest

from kubesalt_isobuild import oci

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(built, tls, tmp_path_factory):
    """Registry loaded from the ISO's layout, and nginx (TLS) serving the extracted ISO."""
    work = tmp_path_factory.mktemp("serve")
    with servers.registry(work / "registry") as reg_port:
        pushed = oci.load_layout_into_registry(built.extracted / "images", f"127.0.0.1:{reg_port}",
                                               tls_verify=False)  # fmt: skip
        with servers.nginx(work / "nginx", built.extracted, tls=tls, registry_port=reg_port) as url:
            yield {"url": url, "pushed": pushed, "work": work, "registry_port": reg_port}


def test_registry_is_filled_from_the_layout_with_digests_kept(built, served):
    images = built.manifest["flavours"]["test"]["images"]
    registry = f"127.0.0.1:{served['registry_port']}"
    assert served["pushed"] == [
        oci.registry_destination(f"{i['name']}:{i['tag']}", registry)
        for i in sorted(images, key=lambda i: f"{i['name']}:{i['tag']}")
    ]
    for img in images:
        dest = oci.registry_destination(f"{img['name']}:{img['tag']}", registry)
        info = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", dest],
                                         check=True, capture_output=True, text=True).stdout)  # fmt: skip
        assert info["Digest"] == img["digest"]


def test_skopeo_inspects_and_copies_each_image_through_nginx_over_tls(built, served, tls, tmp_path):
    host = served["url"].removeprefix("https://")
    for img in built.manifest["flavours"]["test"]["images"]:
        ref = f"{img['name']}:{img['tag']}"
        src = oci.registry_destination(ref, host)
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"--cert-dir={tls['cert_dir']}", src],
                             check=True, capture_output=True).stdout  # fmt: skip
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == img["digest"]
        info = json.loads(subprocess.run(["skopeo", "inspect", f"--cert-dir={tls['cert_dir']}", src],
                                         check=True, capture_output=True, text=True).stdout)  # fmt: skip
        assert info["Digest"] == img["digest"]
        dest = tmp_path / ref.replace("/", "_").replace(":", "_")
        subprocess.run(["skopeo", "copy", "--quiet", f"--src-cert-dir={tls['cert_dir']}", src,
                        f"oci:{dest}:copy"], check=True, capture_output=True)  # fmt: skip
        assert oci.find_ref(dest, "copy")["digest"] == img["digest"]


def test_skopeo_refuses_the_registry_without_the_ca(built, served):
    host = served["url"].removeprefix("https://")
    img = built.manifest["flavours"]["test"]["images"][0]
    src = oci.registry_destination(f"{img['name']}:{img['tag']}", host)
    proc = subprocess.run(["skopeo", "inspect", "--raw", src], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "certificate" in proc.stderr


def dnf_cmd(root: Path, url: str, tree: Path, tls: dict) -> list[str]:
    conf = root.parent / "dnf.conf"
    conf.write_text("[main]\ninstall_weak_deps=False\n")
    return [
        "dnf", "-y", "-q", f"--installroot={root}", "--releasever=9", "--forcearch=x86_64",
        f"--config={conf}", "--setopt=reposdir=/nonexistent", f"--setopt=cachedir={root}-cache",
        "--disablerepo=*", f"--repofrompath=kubesalt,{url}/rpm", "--enablerepo=kubesalt",
        f"--setopt=kubesalt.sslcacert={tls['ca']}",
        # The test RPMs are unsigned; the repository metadata is signed by the ISO key.
        "--setopt=kubesalt.gpgcheck=0", "--setopt=kubesalt.repo_gpgcheck=1",
        f"--setopt=kubesalt.gpgkey=file://{tree / 'kubesalt-archive-key.asc'}",
    ]  # fmt: skip


@pytest.fixture
def gpg_homes(tmp_path):
    """Stop the gpg-agents that gpg, dnf and apt start in homes under tmp_path."""
    yield
    for ring in tmp_path.rglob("pubring*"):
        home = ring if ring.is_dir() else ring.parent
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True
        )


def test_dnf_installs_the_rpm_and_its_dependency_from_the_yum_repository(
    built, served, tls, tmp_path, gpg_homes
):
    root = tmp_path / "installroot"
    proc = subprocess.run([*dnf_cmd(root, served["url"], built.extracted, tls), "install", "ks-hello"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "usr/share/ks/ks-hello/hello.txt").read_text() == "ks-hello 1.2\n"
    assert (root / "usr/share/ks/ks-dep/hello.txt").is_file()
    rpmq = subprocess.run(
        ["rpm", f"--root={root}", "-q", "ks-hello"], capture_output=True, text=True
    )
    assert rpmq.stdout.strip() == "ks-hello-1.2-3.x86_64"


APT_CONF = """\
Dir "{root}/";
Dir::State::status "{root}/var/lib/dpkg/status";
Dir::Etc::SourceParts "{root}/etc/apt/sources.list.d";
Dir::Etc::TrustedParts "{root}/etc/apt/trusted.gpg.d";
Dir::Etc::Parts "{root}/etc/apt/apt.conf.d";
Dir::Etc::PreferencesParts "{root}/etc/apt/preferences.d";
APT::Architecture "amd64";
APT::Sandbox::User "root";
Acquire::https::CaInfo "{ca}";
DPkg::Options {{ "--root={root}"; "--force-script-chrootless"; "--force-not-root"; }};
"""


def apt_root(tmp_path: Path, url: str, keyring: Path, tls: dict) -> tuple[Path, dict]:
    root = tmp_path / "aptroot"
    for sub in ("etc/apt/sources.list.d", "etc/apt/trusted.gpg.d", "etc/apt/apt.conf.d",
                "etc/apt/preferences.d", "var/lib/dpkg/info", "var/lib/dpkg/updates",
                "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"):  # fmt: skip
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    (root / "etc/apt/sources.list").write_text(
        f"deb [signed-by={keyring}] {url}/deb kubesalt main\n"
    )
    conf = root / "etc/apt/apt.conf"
    conf.write_text(APT_CONF.format(root=root, ca=tls["ca"]))
    return root, {
        "APT_CONFIG": str(conf),
        "DEBIAN_FRONTEND": "noninteractive",
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }


def test_apt_installs_the_deb_with_the_release_signature_verified(built, served, tls, tmp_path):
    root, env = apt_root(
        tmp_path, served["url"], built.extracted / "kubesalt-archive-keyring.gpg", tls
    )
    upd = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
    assert upd.returncode == 0, upd.stdout + upd.stderr
    assert "NO_PUBKEY" not in upd.stdout + upd.stderr
    assert "not signed" not in upd.stdout + upd.stderr
    inst = subprocess.run(
        ["apt-get", "install", "-y", "ks-hello"], env=env, capture_output=True, text=True
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (root / "usr/share/ks/ks-hello/hello.txt").read_text() == "ks-hello 2:1.2-3\n"
    assert (root / "usr/share/ks/ks-dep/hello.txt").is_file()
    status = (root / "var/lib/dpkg/status").read_text()
    assert "Package: ks-hello\nStatus: install ok installed" in status


def test_apt_refuses_the_repository_signed_by_another_key(built, served, tls, tmp_path, gpg_homes):
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    gpg = [
        "gpg",
        "--homedir",
        str(other),
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]
    subprocess.run([*gpg, "--quick-gen-key", "someone else", "ed25519", "sign", "never"], check=True,
                   capture_output=True)  # fmt: skip
    keyring = tmp_path / "other.gpg"
    subprocess.run([*gpg, "--output", str(keyring), "--export"], check=True, capture_output=True)
    _root, env = apt_root(tmp_path, served["url"], keyring, tls)
    upd = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
    assert "NO_PUBKEY" in upd.stdout + upd.stderr or "not signed" in upd.stdout + upd.stderr
