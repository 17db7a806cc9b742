"""The absent states and the skip list: each loops over what kubesalt_kubeadm says, and
what it says is every file the renderer gives the role or component."""

import pathlib
from collections import ChainMap
from unittest.mock import Mock

import pytest
import salt.config
import salt.modules.config
import salt.modules.grains
import salt.modules.mine
import salt.utils.templates
import yaml
from salt.exceptions import CommandExecutionError

from kubesalt.kubeadm import paths, skip
from kubesalt.kubeadm.model import Layout
from tests.unit.test_keepalived import render_sls
from tests.unit.test_kubesalt_kubeadm_module import CFG, IPS, NODES, kubesalt_kubeadm

SALT = pathlib.Path(__file__).resolve().parents[2] / "salt"
LAYOUT = Layout()


@pytest.fixture
def skip_list():
    return []


@pytest.fixture
def minion_id():
    return "cp1"


@pytest.fixture
def configure_loader_modules(minion_id, skip_list):
    pillar = {"kubesalt": dict(CFG, nodes=NODES)}
    return {
        kubesalt_kubeadm: {
            "__pillar__": pillar,
            "__grains__": {"id": minion_id, "host": minion_id},
            "__salt__": {
                "mine.get": Mock(spec=salt.modules.mine.get, return_value=dict(IPS)),
                "grains.get": Mock(spec=salt.modules.grains.get, return_value=""),
                "config.get": Mock(spec=salt.modules.config.get, return_value=skip_list),
            },
        }
    }


FUNCTIONS = {
    "kubesalt_kubeadm.role_files": lambda *a: kubesalt_kubeadm.role_files(*a),
    "kubesalt_kubeadm.component_files": lambda c: kubesalt_kubeadm.component_files(c),
    "kubesalt_kubeadm.skipped": lambda phase: kubesalt_kubeadm.skipped(phase),
}


def removed(sls, functions=None):
    """The paths the file.absent states of `sls` remove, and its includes."""
    high = render_sls(sls, {}, dict(FUNCTIONS, **(functions or {}))) or {}  # nothing to remove
    names = [
        dict(ChainMap(*state["file.absent"]))["name"]
        for sid, state in high.items()
        if sid != "include" and "file.absent" in state
    ]
    return names, high.get("include", [])


def test_control_plane_absent_removes_every_control_plane_file():
    names, includes = removed("kubesalt.roles.control-plane-absent")
    assert names == kubesalt_kubeadm.role_files("control-plane")
    for path in (
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/pki/apiserver.crt",
        "/etc/kubernetes/pki/front-proxy-ca.crt",
        "/etc/kubernetes/pki/sa.key",
        "/etc/kubernetes/pki/kubeconfig/admin.key",
    ):
        assert path in names
    assert "/etc/kubernetes/kubelet.conf" not in names  # the etcd and node roles remain
    assert includes == []


def test_etcd_absent_removes_the_member_files():
    names, _ = removed("kubesalt.roles.etcd-absent")
    assert names[0] == "/etc/kubernetes/manifests/etcd.yaml"
    assert {"/etc/kubernetes/pki/etcd/peer.crt", "/etc/kubernetes/pki/etcd/ca.crt"} <= set(names)
    assert set(names) == set(kubesalt_kubeadm.role_files("etcd"))


@pytest.mark.parametrize("minion_id", ["w1"])
def test_node_absent_stops_the_kubelet_and_removes_the_rest(minion_id):
    assert minion_id == "w1"
    names, includes = removed("kubesalt.roles.node-absent")
    assert includes == ["kubesalt.kubelet.absent", "kubesalt.containerd.absent"]
    kubelet, _ = removed("kubesalt.kubelet.absent")
    containerd, _ = removed("kubesalt.containerd.absent")
    assert set(names + kubelet + containerd) >= set(kubesalt_kubeadm.role_files("node"))
    assert "/etc/kubernetes/kubelet.conf" in names


def test_node_absent_keeps_the_kubelet_for_the_remaining_roles():
    high = render_sls("kubesalt.roles.node-absent", {}, FUNCTIONS)  # cp1 is control-plane
    assert list(high) == ["Keep the kubelet and containerd for the remaining roles"]


@pytest.mark.parametrize("minion_id", ["w1", "boot"])
def test_pki_absent_removes_every_certificate_but_the_ca_minions_cas(minion_id):
    names, _ = removed("kubesalt.pki.absent")
    assert names == kubesalt_kubeadm.component_files("pki")
    for kind in ("apiserver", "etcd/peer", "front-proxy-client", "apiserver-etcd-client"):
        assert f"/etc/kubernetes/pki/{kind}.crt" in names
    assert ("/etc/kubernetes/pki/ca.crt" in names) is (minion_id != "boot")
    assert not set(names) & paths.ca_key_files(LAYOUT)


@pytest.mark.parametrize(
    "sls",
    [
        "kubesalt.roles.control-plane-absent",
        "kubesalt.roles.etcd-absent",
        "kubesalt.pki.absent",
        "kubesalt.kubelet.absent",
        "kubesalt.containerd.absent",
    ],
)
def test_absent_states_list_no_path_of_their_own(sls):
    """Every file.absent comes from kubesalt_kubeadm: with no file listed, none is removed."""
    empty = {
        "kubesalt_kubeadm.role_files": lambda *a: [],
        "kubesalt_kubeadm.component_files": lambda c: [],
    }
    assert removed(sls, empty)[0] == []
    text = (SALT / (sls.replace(".", "/") + ".sls")).read_text()
    assert "/etc/" not in text and "/var/" not in text


@pytest.mark.parametrize(("sls", "service"), [("kubelet", "kubelet"), ("containerd", "containerd")])
@pytest.mark.parametrize("skip_list", [["kubelet", "containerd"]])
def test_a_skipped_phase_stops_no_service(sls, service, skip_list):
    assert service in skip_list
    high = render_sls(f"kubesalt.{sls}.absent", {}, FUNCTIONS)
    assert not any("service.dead" in state for state in high.values())
    installed = render_sls(f"kubesalt.{sls}.installed", {}, FUNCTIONS)
    assert list(installed) == [f"Skip installing {'the ' if sls == 'kubelet' else ''}{service}"]


def test_the_states_read_the_skip_list_through_the_module():
    readers = []
    for sls in sorted((SALT / "kubesalt").rglob("*.sls")):
        text = sls.read_text()
        assert "config.get']('kubesalt_skip_phases'" not in text, sls
        if "kubesalt_kubeadm.skipped" in text:
            readers.append(str(sls.relative_to(SALT)))
    assert readers == [
        f"kubesalt/{component}/{state}.sls"
        for component in ("containerd", "kubelet")
        for state in ("absent", "installed", "running")
    ]


@pytest.mark.parametrize(
    ("value", "phase", "expected"),
    [
        ([], "kubelet", False),
        (["kubelet"], "kubelet", True),
        ("containerd, kubelet", "containerd", True),
    ],
)
def test_skipped(value, phase, expected):
    kubesalt_kubeadm.__salt__["config.get"].return_value = value
    assert kubesalt_kubeadm.skipped(phase) is expected
    kubesalt_kubeadm.__salt__["config.get"].assert_called_with("kubesalt_skip_phases", [])


@pytest.mark.parametrize(
    ("value", "phase", "message"),
    [
        (
            ["kublet"],
            "kubelet",
            "SkipError: kubesalt_skip_phases: unknown phase(s) 'kublet'; the phases a node can "
            "skip: containerd, kubelet",
        ),
        (
            [],
            "addons",
            "SkipError: phase 'addons' cannot be skipped on a node; the phases a node can skip: "
            "containerd, kubelet",
        ),
        (
            {"kubelet": True},
            "kubelet",
            "SkipError: kubesalt_skip_phases = {'kubelet': True}: give a list of phase names, "
            "for example [containerd, kubelet]",
        ),
    ],
)
def test_skipped_refuses_unknown_names(value, phase, message):
    kubesalt_kubeadm.__salt__["config.get"].return_value = value
    with pytest.raises(CommandExecutionError) as error:
        kubesalt_kubeadm.skipped(phase)
    assert str(error.value) == message


def test_the_lab_skips_only_declared_phases():
    from kubesalt_lab import model

    assert skip.check(list(model.SKIP_PHASES_GRAIN)) == model.SKIP_PHASES_GRAIN


# Issue 16, item 5: no state stops this node's etcd while etcd still lists it.
GUARD = "Check that etcd no longer lists this node before its etcd stops"


@pytest.mark.parametrize(("manifest", "state"), [(True, "kubesalt_etcd.not_a_member"),
                                                 (False, "test.succeed_without_changes")])  # fmt: skip
def test_the_guard_asks_etcd_only_where_an_etcd_static_pod_runs(manifest, state):
    asked = []
    functions = {
        "kubesalt_kubeadm.path": lambda path: "/root" + path,
        "file.file_exists": lambda path: asked.append(path) or manifest,
    }
    text = (SALT / "kubesalt/etcd/left.sls").read_text()
    opts = dict(salt.config.minion_config(None), file_client="local")
    context = {"salt": functions, "grains": {"id": "cp1"}, "opts": opts, "saltenv": "base"}
    high = yaml.safe_load(salt.utils.templates.render_jinja_tmpl(text, context))
    assert list(high) == [GUARD]
    assert list(high[GUARD]) == [state]
    if manifest:  # the member asked about is this node
        assert high[GUARD][state] == [{"name": "cp1"}]
    assert asked == ["/root/etc/kubernetes/manifests/etcd.yaml"]


@pytest.mark.parametrize("sls", ["kubesalt.roles.etcd-absent", "kubesalt.etcd.absent"])
def test_every_state_stopping_etcd_requires_the_guard(sls):
    high = render_sls(sls, {}, dict(FUNCTIONS, **{"kubesalt_kubeadm.path": lambda path: path}))
    assert high["include"] == ["kubesalt.etcd.left"]
    absent = {sid: dict(ChainMap(*s["file.absent"])) for sid, s in high.items() if sid != "include"}
    assert absent and all(
        {"sls": "kubesalt.etcd.left"} in state["require"] for state in absent.values()
    ), absent
