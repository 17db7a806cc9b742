"""Packages from the archive only, at its pinned versions (issue 16, item 2): the pins read
from manifest.lock.yaml, the pkg.installed options, bootstrap.sh's apt-get install, the
ext_pillar and execution module that carry the pins to the nodes, and every package state
of the Salt tree using them."""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
from collections import ChainMap

import pytest
import yaml

from kubesalt import packages
from kubesalt.bootstrap import archive, cli
from kubesalt.bootstrap.system import Log
from tests.unit.loader import load
from tests.unit.test_keepalived import render_sls

SALT = pathlib.Path(__file__).resolve().parents[2] / "salt"
LOCK = {
    "flavour": "debian12",
    "version": "0.1.0",
    "deb": [
        {"name": "firewalld", "version": "1.3.3-1~deb12u1", "arch": "all"},
        {"name": "python3-venv", "version": "3.11.2-1+b1", "arch": "amd64"},
        {"name": "kubelet", "version": "1.33.5-1.1", "arch": "amd64"},
        {"name": "kubectl", "version": "1.33.5-1.1", "arch": "amd64"},
        {"name": "iptables", "version": "1.8.9-2", "arch": "amd64"},
    ],
    "rpm": [{"name": "firewalld", "version": "1.3.4-1.el9", "arch": "noarch"}],
    "images": [],
}
PINS = packages.pins_from_lock(LOCK, "manifest.lock.yaml")


def _archive(root, version="0.1.0"):
    return archive.Archive(str(root), str(root), "directory", "kubesalt", version)


def test_pins_come_from_the_lock_by_kind():
    assert PINS["deb"]["firewalld"] == "1.3.3-1~deb12u1"
    assert PINS["rpm"] == {"firewalld": "1.3.4-1.el9"}


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ([], "not a manifest lock"),
        ({"deb": [{"name": "a"}]}, "a deb entry without name and version"),
        (
            {"deb": [{"name": "a", "version": "1"}, {"name": "a", "version": "2"}]},
            "deb package a is listed at two versions \\(1 and 2\\)",
        ),
    ],
)
def test_a_bad_lock_is_refused_with_the_file_and_the_entry(lock, message):
    with pytest.raises(packages.PackageError, match=message):
        packages.pins_from_lock(lock, "/srv/kubesalt/kubesalt-0.1.0/manifest.lock.yaml")


def test_read_pins_reads_the_archives_lock_and_names_a_missing_one(tmp_path):
    (tmp_path / archive.LOCK).write_text(yaml.safe_dump(LOCK))
    assert packages.read_pins(str(tmp_path)) == PINS
    with pytest.raises(
        packages.PackageError, match=f"{tmp_path / 'none'}/manifest.lock.yaml is missing"
    ):
        packages.read_pins(str(tmp_path / "none"))


def test_read_pins_parses_an_unchanged_lock_once_and_a_rewritten_one_again(tmp_path, monkeypatch):
    lock = tmp_path / archive.LOCK
    lock.write_text(yaml.safe_dump(LOCK))
    parses = []
    real_load = yaml.safe_load
    monkeypatch.setattr(yaml, "safe_load", lambda text: parses.append(1) or real_load(text))
    first = packages.read_pins(str(tmp_path))
    first["deb"]["kubelet"] = "changed by a caller"
    assert packages.read_pins(str(tmp_path)) == PINS  # the cache keeps its own copy
    assert len(parses) == 1
    lock.write_text(yaml.safe_dump({"deb": [{"name": "kubelet", "version": "1.34.2-1.1"}]}))
    assert packages.read_pins(str(tmp_path)) == {"deb": {"kubelet": "1.34.2-1.1"}, "rpm": {}}
    assert len(parses) == 2


def test_debian_installs_pinned_versions_from_the_archive_suite_without_refresh():
    options = packages.install_options(PINS, ["kubelet", "kubectl"], "Debian", "kubesalt-0.1.0")
    assert options == {
        "pkgs": [{"kubelet": "1.33.5-1.1"}, {"kubectl": "1.33.5-1.1"}],
        "fromrepo": "kubesalt",  # apt-get -t kubesalt: the archive's suite wins everywhere
        "refresh": False,
        "install_recommends": False,
    }


def test_redhat_installs_from_the_archive_repository_alone():
    options = packages.install_options(PINS, ["firewalld"], "RedHat", "kubesalt-0.1.0")
    # Salt's yum/dnf module: --disablerepo=* --enablerepo=kubesalt-0.1.0
    assert options["fromrepo"] == "kubesalt-0.1.0"
    assert options["pkgs"] == [{"firewalld": "1.3.4-1.el9"}]
    assert options["refresh"] is False


@pytest.mark.parametrize(
    ("pins", "names", "family", "message"),
    [
        (PINS, ["keepalived"], "Debian", "the archive of kubesalt-0.1.0 pins no version of keepalived \\(deb\\)"),
        ({}, ["firewalld"], "Debian", "pins no version of firewalld .*0 deb packages"),
        (PINS, ["firewalld"], "Suse", "os_family 'Suse': kubesalt installs packages on Debian and RedHat"),
        (PINS, [], "Debian", "give at least one package name"),
    ],
)  # fmt: skip
def test_a_package_the_archive_does_not_pin_is_refused(pins, names, family, message):
    with pytest.raises(packages.PackageError, match=message):
        packages.install_options(pins, names, family, "kubesalt-0.1.0")


def test_apt_install_sees_only_the_archives_source_and_pins_versions(tmp_path):
    command = packages.apt_install_command(_archive(tmp_path), PINS, ["python3-venv"])
    assert command == [
        "apt-get", "install", "-y", "-q", "--no-install-recommends",
        "-o", "Dir::Etc::sourcelist=/etc/apt/sources.list.d/kubesalt-0.1.0.sources",
        "-o", "Dir::Etc::sourceparts=-",
        "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
        "python3-venv=3.11.2-1+b1",
    ]  # fmt: skip


class RecordingSystem:
    """bootstrap.sh's System, recording commands and writes; dpkg-query finds nothing."""

    def __init__(self):
        self.commands = []

    def run(self, cmd, what, check=True, env=None, quiet_output=False):
        self.commands.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def write(self, path, content, mode=0o644):
        return True


def _bootstrap_context(tmp_path, lock):
    root = tmp_path / "archive"
    root.mkdir()
    (root / archive.KEYRING).write_bytes(b"KEY")
    if lock is not None:
        (root / archive.LOCK).write_text(yaml.safe_dump(lock))
    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    ctx = cli.Context(args=argparse.Namespace(), log=log, system=RecordingSystem())
    ctx.archives = [_archive(root)]
    ctx.current = ctx.archives[0]
    return ctx


def test_bootstrap_installs_python3_venv_from_the_archive_alone_at_its_pin(tmp_path):
    ctx = _bootstrap_context(tmp_path, LOCK)
    cli.phase_repository(ctx)
    installs = [c for c in ctx.system.commands if c[:2] == ["apt-get", "install"]]
    assert installs == [packages.apt_install_command(ctx.current, PINS, ["python3-venv"])]
    updates = [c for c in ctx.system.commands if c[:2] == ["apt-get", "update"]]
    assert updates == [archive.apt_update_command(ctx.current)]


def test_bootstrap_without_a_lock_installs_nothing_and_says_why(tmp_path):
    ctx = _bootstrap_context(tmp_path, None)
    with pytest.raises(cli.BootstrapError, match="manifest.lock.yaml is missing"):
        cli.phase_repository(ctx)
    assert not [c for c in ctx.system.commands if c[:2] == ["apt-get", "install"]]


# -- the Salt side --------------------------------------------------------------------


def test_the_ext_pillar_gives_the_pins_of_the_nodes_saltenv(tmp_path, monkeypatch):
    module = load("_pillar", "kubesalt_packages")
    old = _archive(tmp_path / "old", "0.0.9")
    new = _archive(tmp_path / "new", "0.1.0")
    for item in (old, new):
        pathlib.Path(item.root).mkdir()
    pathlib.Path(new.root, archive.LOCK).write_text(yaml.safe_dump(LOCK))
    monkeypatch.setattr(module._archive, "load_register", lambda: [old, new])
    module.__opts__ = {"pillarenv": "kubesalt-0.1.0", "saltenv": "kubesalt-0.0.9"}
    assert module.ext_pillar("cp2", {}) == {
        "kubesalt_packages": {"saltenv": "kubesalt-0.1.0", **PINS}
    }
    # An archive without its lock: no pins (each package state then says what is missing).
    module.__opts__ = {"pillarenv": "kubesalt-0.0.9"}
    assert module.ext_pillar("cp2", {}) == {}
    module.__opts__ = {"pillarenv": "kubesalt-9.9"}
    assert module.ext_pillar("cp2", {}) == {}


def test_the_module_places_the_pillar_pins_into_pkg_installed_options():
    module = load("_modules", "kubesalt_packages")
    module.__pillar__ = {"kubesalt_packages": {"saltenv": "kubesalt-0.1.0", **PINS}}
    module.__grains__ = {"os_family": "Debian"}
    module.__opts__ = {"saltenv": "kubesalt-0.1.0"}
    assert module.install_options("firewalld") == packages.install_options(
        PINS, ["firewalld"], "Debian", "kubesalt-0.1.0"
    )
    module.__pillar__ = {}
    with pytest.raises(Exception, match="pins no version of firewalld"):
        module.install_options("firewalld")


PKG_STATE = re.compile(r"^\s+pkg\.(installed|latest)\s*:", re.M)


def _package_states():
    found = []
    for path in sorted(SALT.rglob("*.sls")):
        text = path.read_text()
        for match in PKG_STATE.finditer(text):
            block = text[match.end() :].split("\n\n", 1)[0]
            found.append((str(path.relative_to(SALT)), block))
    return found


def test_the_salt_tree_installs_packages():
    files = {path for path, _ in _package_states()}
    assert {
        "kubesalt/firewall/installed.sls",
        "kubesalt/keepalived/installed.sls",
        "kubesalt/containerd/installed.sls",
        "kubesalt/kubelet/installed.sls",
        "kubesalt/etcd/installed.sls",
    } <= files


OPTIONS = ("pkgs", "fromrepo", "refresh", "install_recommends")


@pytest.mark.parametrize(("path", "block"), _package_states())
def test_every_package_state_installs_pinned_from_the_archive_without_refresh(path, block):
    """No pkg state may take a version from any source, or refresh every source: each one
    places every option of kubesalt.packages.install_options (through the execution module
    kubesalt_packages), and nothing else
    names a package."""
    placed = dict(re.findall(r"^\s+- (\w+): \{\{ ([\w.]+) ", block, re.M))
    for option in OPTIONS:
        assert placed.get(option, "").endswith(f".{option}"), (path, option, block)
    sources = {placed[option].rsplit(".", 1)[0] for option in OPTIONS}
    assert len(sources) == 1, (path, sources)
    assert "- name:" not in block, (path, block)


# -- the Kubernetes packages follow the node's release ----------------------------------

PINS_134 = {"deb": {"kubelet": "1.34.2-1.1", "kubectl": "1.34.2-1.1"}, "rpm": {}}


def _installed(**versions):
    return lambda name: versions.get(name, "")


def test_pins_at_the_nodes_release_are_installed_as_pinned():
    assert packages.release_hold(PINS, ["kubelet", "kubectl"], "Debian", "kubesalt-0.1.0",
                                 "v1.33.5", _installed()) is None  # fmt: skip


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.34.2-1.1", "1.34.2"), ("1:1.34.2-150500.1.1", "1.34.2"), ("1.33.5", "1.33.5")],
)
def test_the_upstream_part_of_a_package_version(version, expected):
    assert packages.upstream(version) == expected


def test_mid_upgrade_the_kubelet_at_the_nodes_release_is_kept_and_the_comment_says_why():
    """The minion moved to the new archive (1.34.2) before this node's stage: its files
    still render v1.33.5, so its kubelet must stay at 1.33.5 (never newer than the API
    servers)."""
    hold = packages.release_hold(
        PINS_134, ["kubelet", "kubectl"], "Debian", "kubesalt-0.2.0", "v1.33.5",
        _installed(kubelet="1.33.5-1.1", kubectl="1.33.5-1.1"),
    )  # fmt: skip
    assert hold == {
        "result": True,
        "comment": "kept kubelet 1.33.5-1.1, kubectl 1.33.5-1.1: this node runs Kubernetes "
        "v1.33.5 (its files render it) and the archive of kubesalt-0.2.0 pins kubelet "
        "1.34.2-1.1, kubectl 1.34.2-1.1; the upgrade or downgrade moves them when it "
        "records the node's new release (docs/upgrade.md)",
    }


@pytest.mark.parametrize(
    ("installed", "named"),
    [
        ({}, "kubelet not installed, kubectl not installed, not v1.33.5"),
        ({"kubelet": "1.34.2-1.1", "kubectl": "1.33.5-1.1"}, "kubelet 1.34.2-1.1, not v1.33.5"),
    ],
)
def test_a_kubelet_missing_or_at_another_release_fails_and_says_what_to_do(installed, named):
    hold = packages.release_hold(PINS_134, ["kubelet", "kubectl"], "Debian", "kubesalt-0.2.0",
                                 "v1.33.5", _installed(**installed))  # fmt: skip
    assert hold["result"] is False
    assert hold["comment"].startswith(named + ": this node runs Kubernetes v1.33.5")
    assert "Finish the upgrade or downgrade" in hold["comment"]
    assert "iso/build --kubernetes-version v1.33.5" in hold["comment"]


def test_only_release_bound_packages_are_held():
    pins = {"deb": {**PINS_134["deb"], "containerd": "1.7.24"}, "rpm": {}}
    asked = []

    def installed(name):
        asked.append(name)
        return "1.33.5-1.1"

    hold = packages.release_hold(pins, ["kubelet", "containerd"], "Debian", "s", "v1.33.5",
                                 installed)  # fmt: skip
    assert hold["result"] is True and asked == ["kubelet"]
    assert packages.release_hold(pins, ["containerd"], "Debian", "s", "v1.33.5", installed) is None


def _kubelet_module(recorded, installed):
    module = load("_modules", "kubesalt_packages")
    nodes = {"w1": {"kubernetes_version": recorded}} if recorded else {}
    module.__pillar__ = {
        "kubesalt_packages": {"saltenv": "kubesalt-0.2.0", **PINS_134},
        "kubesalt": {"kubernetes": {"version": "v1.34.2"}, "nodes": nodes},
    }
    module.__grains__ = {"os_family": "Debian", "id": "w1"}
    module.__opts__ = {}
    module.__salt__ = {"pkg.version": _installed(**installed)}
    return module


def _kubelet_functions(module):
    return {
        "kubesalt_kubeadm.skipped": lambda phase: False,
        "kubesalt_packages.release_hold": module.release_hold,
        "kubesalt_packages.install_options": module.install_options,
    }


def test_the_kubelet_state_installs_the_pins_at_the_nodes_release():
    module = _kubelet_module(None, {})  # no release recorded: the cluster's, v1.34.2
    high = render_sls("kubesalt.kubelet.installed", module.__pillar__,
                      _kubelet_functions(module))  # fmt: skip
    state = dict(ChainMap(*high["Install the kubelet and kubectl"]["pkg.installed"]))
    assert state["pkgs"] == [{"kubelet": "1.34.2-1.1"}, {"kubectl": "1.34.2-1.1"}]


@pytest.mark.parametrize(("installed", "result"), [("1.33.5-1.1", True), ("", False)])
def test_the_kubelet_state_keeps_a_node_recorded_at_the_old_release(installed, result):
    module = _kubelet_module("v1.33.5", {"kubelet": installed, "kubectl": installed})
    high = render_sls("kubesalt.kubelet.installed", module.__pillar__,
                      _kubelet_functions(module))  # fmt: skip
    assert list(high) == ["Keep the kubelet and kubectl at the node's Kubernetes release"]
    state = dict(ChainMap(*high["Keep the kubelet and kubectl at the node's Kubernetes release"]
                          ["test.configurable_test_state"]))  # fmt: skip
    expected = packages.release_hold(PINS_134, ["kubelet", "kubectl"], "Debian",
                                     "kubesalt-0.2.0", "v1.33.5",
                                     _installed(kubelet=installed, kubectl=installed))  # fmt: skip
    assert state == {"changes": False, "result": result, "comment": expected["comment"],
                     "allow_test_mode_failure": True}  # fmt: skip


def test_the_module_refuses_an_unsupported_recorded_release():
    module = _kubelet_module("v1.20.0", {})
    with pytest.raises(Exception, match="records Kubernetes 'v1.20.0' for node w1"):
        module.release_hold("kubelet", "kubectl")
