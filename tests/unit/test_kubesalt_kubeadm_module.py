"""The kubesalt_kubeadm execution module and the kubesalt_pki ext_pillar, with Salt's loader
mocked (salt-factories' configure_loader_modules)."""

from unittest.mock import Mock, patch

import pytest
import salt.modules.grains
import salt.modules.mine
import salt.modules.publish
from salt.exceptions import CommandExecutionError

from kubesalt import config, mine, sealing
from kubesalt.kubeadm import pki
from tests.unit import fake_mine
from tests.unit.loader import load
from tests.unit.test_config import BASE

kubesalt_kubeadm = load("_modules", "kubesalt_kubeadm")
kubesalt_pki = load("_pillar", "kubesalt_pki")

# As the kubesalt ext_pillar gives it: cp1 is the node the inventory recorded as first.
CFG = dict(config.validate(dict(BASE, ca={"minion": "boot"}))[0], first_node="cp1")
NODES = {
    "boot": {"roles": ["bootstrap", "ca"]},
    "cp1": {"roles": ["control-plane", "etcd", "node"]},
    "w1": {"roles": ["node"]},
}
IPS = {"boot": "198.51.100.10", "cp1": "198.51.100.11", "w1": "198.51.100.21"}
# Each node's grain kubesalt:workload_plane_ip (one network here: BASE sets no workload plane).
WORKLOAD_IPS = {"boot": "198.51.100.10", "cp1": "198.51.100.11", "w1": "198.51.100.121"}


def grain_values(minion, **grains):
    """A grains.get for `minion`: its workload-plane IP, and `grains` (others: the default)."""
    values = {"kubesalt:workload_plane_ip": WORKLOAD_IPS.get(minion, ""), **grains}
    return lambda key, default="": values.get(key, default)


@pytest.fixture
def mine_get():
    return fake_mine.mine_get({"control_plane_ip": IPS})


@pytest.fixture
def grains_get(minion_id):
    return Mock(spec=salt.modules.grains.get, side_effect=grain_values(minion_id))


@pytest.fixture
def publish():
    return Mock(spec=salt.modules.publish.publish)


@pytest.fixture
def minion_id():
    return "w1"


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def configure_loader_modules(mine_get, grains_get, publish, minion_id, root):
    pillar = {"kubesalt": dict(CFG, nodes=NODES)}
    grains = {"id": minion_id, "host": minion_id, "kubesalt_root": str(root)}
    return {
        kubesalt_kubeadm: {
            "__pillar__": pillar,
            "__grains__": grains,
            "__salt__": {
                "mine.get": mine_get,
                "grains.get": grains_get,
                "publish.publish": publish,
            },
        },
        kubesalt_pki: {"__grains__": grains, "__opts__": {}},
    }


def test_virtual_names():
    assert kubesalt_kubeadm.__virtual__() == "kubesalt_kubeadm"
    assert kubesalt_pki.__virtual__() == "kubesalt_pki"


def test_worker_pki_asks_the_ca_minion(root):
    result = kubesalt_kubeadm.pki()
    assert result["ca_server"] == "boot"
    assert result["is_ca"] is False
    assert result["service_account"] is None
    assert result["key_args"] == {"algo": "rsa", "keysize": 2048}
    assert [c["kind"] for c in result["cas"]] == ["ca"]
    assert result["cas"][0]["key"] is None
    assert result["certificates"] == [
        {
            "kind": "kubelet-client",
            "cert": f"{root}/etc/kubernetes/pki/kubeconfig/kubelet-client.crt",
            "key": f"{root}/etc/kubernetes/pki/kubeconfig/kubelet-client.key",
            "signing_policy": "kubesalt-kubelet-client-w1",
            "days_remaining": 90,
            "ca_CN": "kubernetes",
            "expected": {
                "common_name": "system:node:w1",
                "organizations": ["system:nodes"],
                "dns_names": [],
                "ip_addresses": [],
                "key_usage": ["digitalSignature", "keyEncipherment"],
                "extended_key_usage": ["clientAuth"],
                "ca": False,
                "ca_cert": f"{root}/etc/kubernetes/pki/ca.crt",
                "subject_key_identifier": False,
                "authority_key_identifier": True,
                "digest": "sha256",
            },
        }
    ]
    assert result["directories"][f"{root}/etc/kubernetes/pki/kubeconfig"] == "0700"


@pytest.mark.parametrize("minion_id", ["cp1"])
def test_control_plane_pki_policies(minion_id):
    result = kubesalt_kubeadm.pki()
    policies = {c["kind"]: c["signing_policy"] for c in result["certificates"]}
    assert policies["etcd-server"] == "kubesalt-etcd-server-cp1"
    assert policies["admin"] == "kubesalt-admin"
    assert policies["super-admin"] == "kubesalt-super-admin"
    assert result["service_account"]["key"].endswith("/etc/kubernetes/pki/sa.key")
    assert kubesalt_kubeadm.node()["first"] is True


@pytest.mark.parametrize("minion_id", ["boot"])
def test_the_ca_minion_signs_locally(minion_id):
    result = kubesalt_kubeadm.pki()
    assert result["ca_server"] is None
    assert [c["kind"] for c in result["cas"]] == ["ca", "front-proxy-ca", "etcd-ca"]
    assert all(c["key"] for c in result["cas"])
    assert result["certificates"] == []


def test_files_of_a_worker(root):
    assert kubesalt_kubeadm.files("apiserver") == {"files": {}, "directories": {}}
    kubelet = kubesalt_kubeadm.files("kubelet")
    assert kubelet["files"][f"{root}/var/lib/kubelet/config.yaml"] == "0644"
    assert kubelet["directories"][f"{root}/var/lib/kubelet"] == "0700"
    assert kubelet["directories"][f"{root}/etc/kubernetes/manifests"] == "0700"
    kubeconfig = kubesalt_kubeadm.files("kubeconfig")
    assert kubeconfig["files"] == {f"{root}/etc/kubernetes/kubelet.conf": "0600"}


def test_containerd_content_uses_the_bootstrap_registry(root):
    hosts = kubesalt_kubeadm.content(f"{root}/etc/containerd/certs.d/quay.io/hosts.toml")
    assert 'server = "https://198.51.100.10:8443/v2/quay.io"' in hosts


def test_the_mine_is_asked_once_per_job_for_every_file_rendered(root, mine_get, grains_get):
    """A highstate renders dozens of files; the peers' IPs come from one mine.get per job
    (the loader's __context__), the node's own IP from its grain every time."""
    for name in ("quay.io", "docker.io", "registry.k8s.io"):
        kubesalt_kubeadm.content(f"{root}/etc/containerd/certs.d/{name}/hosts.toml")
    assert [c.args for c in mine_get.call_args_list] == [("*", list(mine.FUNCTIONS))]
    assert grains_get.call_count >= 3


def test_unknown_component_and_file(root):
    with pytest.raises(CommandExecutionError, match="Unknown component 'etcdd'"):
        kubesalt_kubeadm.files("etcdd")
    with pytest.raises(CommandExecutionError, match="is not a file that node w1 gets"):
        kubesalt_kubeadm.content(f"{root}/etc/hosts")


def test_ca_certificate_missing_from_the_mine():
    with pytest.raises(CommandExecutionError, match="apply kubesalt.pki on boot first"):
        kubesalt_kubeadm.ca_certificate("ca")
    with pytest.raises(CommandExecutionError, match="Unknown CA 'root'"):
        kubesalt_kubeadm.ca_certificate("root")


def test_render_errors_become_command_execution_errors(mine_get):
    mine_get.published["control_plane_ip"] = {}
    with pytest.raises(CommandExecutionError, match="RenderError: node w1 has no control-plane IP"):
        kubesalt_kubeadm.node()


def test_missing_pillar_is_explained(configure_loader_modules):
    kubesalt_kubeadm.__pillar__.clear()  # noqa: F821 (set by the loader mock)
    with pytest.raises(CommandExecutionError, match="The pillar has no 'kubesalt' key"):
        kubesalt_kubeadm.pki()


def test_path_moves_under_the_root(root):
    assert kubesalt_kubeadm.path("/etc/kubernetes") == f"{root}/etc/kubernetes"


# --- the sealed service-account key ---------------------------------------------------------------


@pytest.fixture
def sa_key(root):
    key = pki.generate_key("RSA-2048")
    path = root / "etc/kubernetes/pki/sa.key"
    path.parent.mkdir(parents=True)
    path.write_bytes(pki.key_to_pem(key))
    return key


@pytest.mark.parametrize("minion_id", ["boot"])
@pytest.mark.parametrize(
    ("requester", "error"),
    [
        ("w1", "minion 'w1' is not permitted to get the service-account key"),
        (None, "minion None is not permitted"),
    ],
)
def test_service_account_key_refused(minion_id, sa_key, requester, error):
    _, public = sealing.new_recipient()
    kwargs = {"__pub_id": requester} if requester else {}
    ret = kubesalt_kubeadm.service_account_key(public, **kwargs)
    assert ret["data"] is None
    assert error in ret["errors"][0]


def test_service_account_key_only_on_the_ca_minion(sa_key):
    _, public = sealing.new_recipient()
    ret = kubesalt_kubeadm.service_account_key(public, __pub_id="cp1")
    assert ret == {"data": None, "errors": ["w1 is not the CA minion (boot)"]}


@pytest.mark.parametrize("minion_id", ["boot"])
def test_service_account_key_sealed_for_a_control_plane(minion_id, sa_key):
    recipient, public = sealing.new_recipient()
    ret = kubesalt_kubeadm.service_account_key(public, __pub_id="cp1")
    assert ret["errors"] == []
    assert sealing.unseal(ret["data"], recipient) == pki.key_to_pem(sa_key)


@pytest.mark.parametrize("minion_id", ["cp1"])
def test_control_plane_fetches_the_sealed_key(minion_id, root, mine_get, publish):
    key = pki.generate_key("RSA-2048")
    mine_get.published["kubesalt_sa_pub"] = {"boot": pki.public_key_to_pem(key).decode()}

    def answer(tgt, fun, arg, timeout):
        assert (tgt, fun, timeout) == ("boot", "kubesalt_kubeadm.service_account_key", 60)
        public = arg[0].partition("=")[2]
        return {"boot": {"data": sealing.seal(pki.key_to_pem(key), public), "errors": []}}

    publish.side_effect = answer
    path = f"{root}/etc/kubernetes/pki/sa.key"
    assert kubesalt_kubeadm.content(path) == pki.key_to_pem(key).decode()
    # Once the local key matches the published public key, nothing is asked any more.
    (root / "etc/kubernetes/pki").mkdir(parents=True)
    (root / "etc/kubernetes/pki/sa.key").write_bytes(pki.key_to_pem(key))
    publish.reset_mock()
    assert kubesalt_kubeadm.content(path) == pki.key_to_pem(key).decode()
    publish.assert_not_called()


@pytest.mark.parametrize("minion_id", ["cp1"])
def test_refused_sealed_key_is_explained(minion_id, root, mine_get, publish):
    mine_get.published["kubesalt_sa_pub"] = {"boot": "-----BEGIN PUBLIC KEY-----"}
    publish.return_value = {"boot": {"data": None, "errors": ["minion 'cp1' is not permitted"]}}
    with pytest.raises(CommandExecutionError, match="did not give the service-account key"):
        kubesalt_kubeadm.content(f"{root}/etc/kubernetes/pki/sa.key")


# --- the ext_pillar ------------------------------------------------------------------------------


def test_ext_pillar_only_for_the_ca_minion(monkeypatch, root):
    monkeypatch.setattr(kubesalt_pki, "control_plane_ips", lambda opts, names: IPS)
    pillar = {"kubesalt": dict(CFG, nodes=NODES)}
    assert kubesalt_pki.ext_pillar("w1", pillar) == {}
    assert kubesalt_pki.ext_pillar("boot", {}) == {}
    result = kubesalt_pki.ext_pillar("boot", pillar)
    policies = result["x509_signing_policies"]
    assert policies["kubesalt-kubelet-client-w1"]["minions"] == "w1"
    assert policies["kubesalt-admin"]["signing_cert"] == f"{root}/etc/kubernetes/pki/ca.crt"
    assert result["mine_functions"]["kubesalt_etcd_ca"] == [
        {"mine_function": "x509.get_pem_entry"},
        f"{root}/etc/kubernetes/pki/etcd/ca.crt",
    ]


def test_ext_pillar_leaves_out_a_node_with_a_bad_mine_entry(monkeypatch, caplog):
    """One bogus control_plane_ip never stops the policies of every other node."""
    monkeypatch.setattr(
        kubesalt_pki, "control_plane_ips", lambda opts, names: dict(IPS, w1="garbage")
    )
    result = kubesalt_pki.ext_pillar("boot", {"kubesalt": dict(CFG, nodes=NODES)})
    policies = result["x509_signing_policies"]
    assert "kubesalt-kubelet-client-w1" not in policies
    assert policies["kubesalt-kubelet-client-cp1"]["minions"] == "cp1"
    assert "mine control_plane_ip of w1: 'garbage' is not an IP address" in caplog.text


@pytest.mark.parametrize("minion_id", ["cp1"])
def test_another_nodes_bad_mine_entry_does_not_stop_this_node(mine_get, minion_id):
    kubesalt = kubesalt_kubeadm.__pillar__["kubesalt"]
    kubesalt["nodes"] = dict(NODES, cp2={"roles": ["control-plane", "etcd"]})
    kubesalt["first_node"] = None  # the cluster exists: cp1 joins, listing every etcd member
    mine_get.published["control_plane_ip"] = dict(IPS, cp2="garbage")
    assert kubesalt_kubeadm.node()["etcd_members"] == [["cp1", "198.51.100.11"]]


def test_a_bad_own_mine_entry_is_named(grains_get):
    grains_get.side_effect = grain_values("w1", **{"kubesalt:control_plane_ip": "8.8.8.8"})
    with pytest.raises(CommandExecutionError, match="of w1: '8.8.8.8' is outside"):
        kubesalt_kubeadm.node()


def test_ext_pillar_reports_a_bad_inventory(monkeypatch):
    monkeypatch.setattr(kubesalt_pki, "control_plane_ips", lambda opts, names: IPS)
    pillar = {"kubesalt": dict(CFG, nodes={"w1": {"roles": ["master"]}})}
    result = kubesalt_pki.ext_pillar("boot", pillar)
    assert "kubesalt:nodes:w1:roles is ['master']" in result["_errors"][0]


@pytest.mark.parametrize("minion_id", ["cp1"])
def test_a_joined_etcd_member_keeps_the_initial_cluster_recorded_at_its_join(
    grains_get, mine_get, minion_id
):
    """deploy_node records --initial-cluster in a grain; later joins must not change it."""
    kubesalt = kubesalt_kubeadm.__pillar__["kubesalt"]
    kubesalt["nodes"] = dict(NODES, boot={"roles": ["bootstrap", "ca", "control-plane", "etcd"]},
                             cp2={"roles": ["control-plane", "etcd"]})  # fmt: skip
    kubesalt["first_node"] = "boot"  # the inventory recorded boot, declared with every role
    mine_get.published["control_plane_ip"] = dict(IPS, cp2="198.51.100.12")
    from_mine = [["boot", "198.51.100.10"], ["cp1", "198.51.100.11"], ["cp2", "198.51.100.12"]]
    assert kubesalt_kubeadm.node()["etcd_members"] == from_mine
    recorded = from_mine[:2]

    grains_get.side_effect = grain_values(
        "cp1", **{kubesalt_kubeadm.INITIAL_CLUSTER_GRAIN: recorded}
    )
    assert minion_id == "cp1"
    assert kubesalt_kubeadm.node()["etcd_members"] == recorded


@pytest.mark.parametrize("minion_id", ["boot"])
def test_a_restored_first_node_with_a_recorded_join_rejoins_etcd(grains_get, mine_get, minion_id):
    """The first node restored from a backup joined the cluster again (the restore
    orchestration recorded its --initial-cluster): still first, its etcd joins."""
    kubesalt = kubesalt_kubeadm.__pillar__["kubesalt"]
    kubesalt["nodes"] = dict(NODES, boot={"roles": ["bootstrap", "ca", "control-plane", "etcd"]},
                             cp2={"roles": ["control-plane", "etcd"]})  # fmt: skip
    kubesalt["first_node"] = "boot"
    mine_get.published["control_plane_ip"] = dict(IPS, cp2="198.51.100.12")
    assert kubesalt_kubeadm.node()["rejoined"] is False
    recorded = [["cp2", "198.51.100.12"], ["boot", "198.51.100.10"]]
    grains_get.side_effect = grain_values(
        "boot", **{kubesalt_kubeadm.INITIAL_CLUSTER_GRAIN: recorded}
    )
    node = kubesalt_kubeadm.node()
    assert (node["first"], node["rejoined"], node["etcd_members"]) == (True, True, recorded)


@pytest.mark.parametrize("minion_id", ["boot"])
def test_published_compares_every_ca_and_the_sa_key_with_the_jobs_mine_answer(
    root, mine_get, minion_id
):
    authorities = pki.create_authorities(CFG)
    pki.save_authorities(authorities, f"{root}/etc/kubernetes/pki")
    mine_get.reset_mock()
    assert kubesalt_kubeadm.published() is False  # nothing in the mine yet
    for kind, function in mine.CA_CERTIFICATES.items():
        mine_get.published[function] = {"boot": authorities.cas[kind].cert_pem.decode()}
    mine_get.published[mine.SA_PUB] = {"boot": pki.public_key_to_pem(authorities.sa_key).decode()}
    kubesalt_kubeadm.__context__.clear()  # a new job asks the master again
    assert kubesalt_kubeadm.published() is True
    assert [c.args for c in mine_get.call_args_list][-1] == ("*", list(mine.FUNCTIONS))
    assert mine_get.call_count == 2  # one request per job
    # Later in the same job a CA file changes (the job's own state wrote it): the answer
    # taken before no longer matches, so the CA minion publishes again.
    etcd_ca = f"{root}/etc/kubernetes/pki/etcd/ca.crt"
    other = pki.create_authorities(CFG).cas["etcd-ca"].cert_pem
    with open(etcd_ca, "wb") as handle:
        handle.write(other)
    assert kubesalt_kubeadm.published() is False
    assert mine_get.call_count == 2
    kubesalt_kubeadm.__context__.clear()
    mine_get.published["kubesalt_etcd_ca"] = {"boot": other.decode()}
    assert kubesalt_kubeadm.published() is True


def test_every_ca_certificate_comes_from_one_mine_request_per_job(mine_get):
    for kind, function in mine.CA_CERTIFICATES.items():
        mine_get.published[function] = {"boot": f"PEM of {kind}"}
    mine_get.reset_mock()
    assert [kubesalt_kubeadm.ca_certificate(k) for k in mine.CA_CERTIFICATES] == [
        f"PEM of {k}" for k in mine.CA_CERTIFICATES
    ]
    assert mine_get.call_count == 1


def test_a_renew_run_hands_its_override_to_the_certificate_states():
    override = {"window_days": 400, "force": False, "issued_before": "2026-06-01T12:00:00Z"}
    assert kubesalt_kubeadm.pki()["renewal"] is None
    with patch.dict(kubesalt_kubeadm.__pillar__, {"kubesalt_renew": override}):
        result = kubesalt_kubeadm.pki()
    assert result["renewal"] == override
    assert {c["days_remaining"] for c in result["certificates"]} == {90}  # the configured one


def test_the_kubelet_announces_the_workload_plane_ip_when_the_planes_differ(root, grains_get):
    """--node-ip is the Node's InternalIP, on which kube-router peers and tunnels: with
    separate planes it must be the workload-plane IP; the rest stays on the control plane."""
    kubesalt = kubesalt_kubeadm.__pillar__["kubesalt"]
    kubesalt["networks"] = dict(kubesalt["networks"], workloadPlane={"cidr": ["10.20.0.0/16"]})
    grains_get.side_effect = grain_values("w1", **{"kubesalt:workload_plane_ip": "10.20.0.21"})
    node = kubesalt_kubeadm.node()
    assert (node["ip"], node["workload_ip"]) == ("198.51.100.21", "10.20.0.21")
    flags = kubesalt_kubeadm.content(f"{root}/var/lib/kubelet/kubeadm-flags.env")
    assert " --node-ip=10.20.0.21 " in flags


def test_the_kubelet_keeps_the_one_ip_when_the_planes_are_one_network(root):
    assert kubesalt_kubeadm.node()["workload_ip"] == "198.51.100.121"
    flags = kubesalt_kubeadm.content(f"{root}/var/lib/kubelet/kubeadm-flags.env")
    assert " --node-ip=198.51.100.121 " in flags


def test_a_missing_workload_plane_ip_is_explained(grains_get):
    grains_get.side_effect = grain_values("w1", **{"kubesalt:workload_plane_ip": ""})
    with pytest.raises(CommandExecutionError) as info:
        kubesalt_kubeadm.node()
    assert str(info.value) == (
        "RenderError: node w1 has no workload-plane IP (grain kubesalt:workload_plane_ip); "
        "apply kubesalt.node first, which chooses and publishes it"
    )


def test_a_workload_plane_ip_outside_its_plane_is_named(grains_get):
    kubesalt = kubesalt_kubeadm.__pillar__["kubesalt"]
    kubesalt["networks"] = dict(kubesalt["networks"], workloadPlane={"cidr": ["10.20.0.0/16"]})
    with pytest.raises(
        CommandExecutionError,
        match=r"^ConfigError: mine workload_plane_ip of w1: '198.51.100.121' is outside "
        r"networks.workloadPlane.cidr \(10.20.0.0/16\)",
    ):
        kubesalt_kubeadm.node()


def test_a_node_moved_back_to_1_33_gets_instance_config_yaml_removed(root, monkeypatch):
    instance = f"{root}/var/lib/kubelet/instance-config.yaml"
    at = {"v1.34.2": [], "v1.33.5": [instance]}  # stale at 1.33 only
    for version, stale in at.items():
        nodes = dict(NODES, w1={"roles": ["node"], "kubernetes_version": version})
        monkeypatch.setitem(kubesalt_kubeadm.__pillar__, "kubesalt", dict(CFG, nodes=nodes))
        assert kubesalt_kubeadm.stale_files("kubelet") == stale, version


def test_a_worker_renders_the_release_the_inventory_records(root, monkeypatch):
    nodes = dict(NODES, w1={"roles": ["node"], "kubernetes_version": "v1.34.2"})
    monkeypatch.setitem(kubesalt_kubeadm.__pillar__, "kubesalt", dict(CFG, nodes=nodes))
    kubelet = kubesalt_kubeadm.files("kubelet")["files"]
    assert kubelet[f"{root}/var/lib/kubelet/instance-config.yaml"] == "0644"
    flags = kubesalt_kubeadm.content(f"{root}/var/lib/kubelet/kubeadm-flags.env")
    assert flags == (
        'KUBELET_KUBEADM_ARGS="--node-ip=198.51.100.121 '
        '--pod-infra-container-image=registry.k8s.io/pause:3.10.1"\n'
    )
    toml = kubesalt_kubeadm.content(f"{root}/etc/containerd/config.toml")
    assert '  sandbox_image = "registry.k8s.io/pause:3.10.1"\n' in toml
    # Without a recorded release, the cluster's (here the archive's, v1.33.5).
    monkeypatch.setitem(kubesalt_kubeadm.__pillar__, "kubesalt", dict(CFG, nodes=NODES))
    assert (
        f"{root}/var/lib/kubelet/instance-config.yaml"
        not in (kubesalt_kubeadm.files("kubelet")["files"])
    )
