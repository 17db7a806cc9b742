"""kubesalt.kubeadm.paths: the files of a node, of a role and of a component, checked against
what render_node really writes."""

import pytest
from conftest import NOW, REGISTRY
from reference_vectors import ALL_ROLES, config

from kubesalt.kubeadm import RenderError, paths, render
from kubesalt.kubeadm.certs import node_certificates
from kubesalt.kubeadm.files import RenderedFile
from kubesalt.kubeadm.model import Layout, Node

CP, ETCD, NODE = "control-plane", "etcd", "node"
INIT = {CP, ETCD}
# ECDSA leaf keys: the same files, much faster to issue than RSA.
CFG = config(**{"pki.algorithm": "ECDSA-P256"})
LAYOUT = Layout()


def _node(roles):
    first = set(roles) >= INIT  # cp1 is ca.minion: the init node whenever it can be
    members = () if first or ETCD not in roles else (("cp0", "10.0.0.9"),)
    return Node("cp1", "10.0.0.10", frozenset(roles), first=first, etcd_members=members)


@pytest.fixture(scope="module")
def written(authorities):
    """Every file render_node writes for cp1 with some roles, plus the kubeconfig client
    certificates kubesalt.pki keeps, by roles."""
    cache = {}

    def files_of(roles):
        roles = frozenset(roles)
        if not roles:
            return set()
        if roles not in cache:
            node = _node(roles)
            rendered = render.render_node(CFG, node, authorities, registry=REGISTRY, now=NOW)
            found = {p for p, item in rendered.items() if isinstance(item, RenderedFile)}
            for spec in node_certificates(CFG, node):
                if spec.kubeconfig_path:
                    found |= set(paths.cert_files(spec, LAYOUT))
            cache[roles] = found
        return cache[roles]

    return files_of


@pytest.mark.parametrize(
    "roles",
    [ALL_ROLES, {CP, ETCD, NODE}, {CP, ETCD}, {ETCD, NODE}, {ETCD}, {NODE}, {"bootstrap", "ca"}],
    ids=lambda r: ",".join(sorted(r)),
)
def test_node_files_are_the_files_render_node_writes(roles, written):
    assert set(paths.node_files(CFG, _node(roles), LAYOUT)) == written(roles)


@pytest.mark.parametrize(
    ("now", "role", "with_role", "without"),
    [
        ({CP, ETCD, NODE}, CP, {CP, ETCD, NODE}, {ETCD, NODE}),  # remove_node: still declared
        ({ETCD, NODE}, CP, {CP, ETCD, NODE}, {ETCD, NODE}),  # highstate after the change
        ({NODE}, CP, {CP, ETCD, NODE}, {ETCD, NODE}),  # a worker's highstate
        ({CP, ETCD, NODE}, ETCD, {CP, ETCD, NODE}, {NODE}),  # the control plane goes too
        ({NODE}, ETCD, {ETCD, NODE}, {NODE}),
        ({NODE}, NODE, {NODE}, set()),
        ({CP, ETCD, NODE}, NODE, {CP, ETCD, NODE}, {CP, ETCD}),  # still runs a kubelet
        (ALL_ROLES, CP, ALL_ROLES, ALL_ROLES - {CP}),  # the CA minion keeps its CA files
    ],
)
def test_role_files_are_every_file_the_role_brings(now, role, with_role, without, written):
    found = paths.role_files(CFG, "cp1", role, {"cp1": frozenset(now)}, LAYOUT)
    expected = written(with_role) - written(without) - paths.ca_key_files(LAYOUT)
    assert set(found) == expected
    assert len(found) == len(expected)
    manifests = [p for p in found if p.startswith("/etc/kubernetes/manifests/")]
    assert found[: len(manifests)] == sorted(manifests)  # static pods first


def test_a_worker_loses_nothing_of_a_role_it_keeps():
    assert paths.role_files(CFG, "w1", NODE, {"w1": frozenset({CP, ETCD, NODE})}, LAYOUT) == []
    assert "/etc/kubernetes/pki/sa.key" in paths.role_files(
        CFG, "w1", CP, {"w1": frozenset({NODE}), "cp1": frozenset(INIT)}, LAYOUT
    )


def test_role_files_by_component():
    found = paths.role_files(CFG, "w1", NODE, {"w1": frozenset()}, LAYOUT, ("kubeconfig", "pki"))
    assert found == [
        "/etc/kubernetes/kubelet.conf",
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/pki/kubeconfig/kubelet-client.crt",
        "/etc/kubernetes/pki/kubeconfig/kubelet-client.key",
    ]


@pytest.mark.parametrize("is_ca", [False, True])
def test_component_files_of_pki_cover_every_certificate(is_ca, written):
    found = set(paths.component_files(CFG, "cp1", "pki", LAYOUT, is_ca))
    every_pki = {p for p in written(ALL_ROLES) if p.startswith("/etc/kubernetes/pki/")}
    kept = {p for p in written({"ca"})} if is_ca else set()
    assert found == every_pki - kept - paths.ca_key_files(LAYOUT)
    for certificate in ("apiserver.crt", "etcd/peer.crt", "front-proxy-client.crt", "sa.key"):
        assert (LAYOUT.pki(certificate) in found) is (not is_ca or certificate != "sa.key")


def test_component_files_of_kubelet_and_containerd(written):
    assert paths.component_files(CFG, "w1", "kubelet", LAYOUT, False) == [
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/instance-config.yaml",  # 1.34's, on a 1.33 cluster too
        "/var/lib/kubelet/kubeadm-flags.env",
    ]
    containerd = paths.component_files(CFG, "w1", "containerd", LAYOUT, False)
    assert set(containerd) == {p for p in written({NODE}) if p.startswith("/etc/containerd/")}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: paths.role_files(CFG, "w1", "ca", {}, LAYOUT),
            "role 'ca' has no absent state; roles undone by a highstate: etcd, control-plane, node",
        ),
        (
            lambda: paths.role_files(CFG, "w1", NODE, {}, LAYOUT, ("certs",)),
            "component(s) 'certs' unknown; valid: manifests, kubeconfig, pki, kubelet, containerd",
        ),
        (
            lambda: paths.component_files(CFG, "w1", "certs", LAYOUT, False),
            "component 'certs' unknown; valid: manifests, kubeconfig, pki, kubelet, containerd",
        ),
    ],
)
def test_errors_name_the_valid_values(call, message):
    with pytest.raises(RenderError) as error:
        call()
    assert str(error.value) == message
