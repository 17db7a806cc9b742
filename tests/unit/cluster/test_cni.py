"""kube-router's objects (kubesalt.cluster.cni): rendered from the configuration, valid for
Kubernetes 1.33, pinned, carried by the ISO and served by the nodes' registry mirror."""

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kubesalt import config, firewall, ports, roles
from kubesalt.cluster import cni
from kubesalt.cluster.model import cluster_nodes
from kubesalt.kubeadm import containerd
from kubesalt.kubeadm.images import image
from kubesalt_isobuild import build
from kubesalt_isobuild import images as isobuild_images
from kubesalt_isobuild.errors import ManifestError
from kubesalt_isobuild.manifest import Image, load_manifest

KUBERNETES = "1.33.0"
REPO = Path(__file__).resolve().parents[3]
# Three control-plane nodes (stacked etcd) and one worker, roles from kubesalt.roles.
NODES = cluster_nodes(
    {
        **{f"cp{i}": (roles.CONTROL_PLANE, roles.ETCD) for i in (1, 2, 3)},
        "worker1": (roles.NODE,),
    }
)
FAMILIES = {
    "ipv4": {
        "controlPlane": "10.0.0.0/24",
        "workloadPlane": "10.1.0.0/24",
        "pods": "10.233.0.0/16",
        "services": "10.96.0.0/12",
        "host": "10.0.0.100",
    },
    "ipv6": {
        "controlPlane": "fd00:1::/64",
        "workloadPlane": "fd00:2::/64",
        "pods": "fd00:233::/56",
        "services": "fd00:96::/112",
        "host": "fd00:1::100",
    },
}


def cluster_config(family: str = "ipv4", mtu: int | None = None, port: int = 6443) -> dict:
    """A normalized configuration (kubesalt.config.validate) of the given family."""
    values = FAMILIES[family]
    workload = {"cidr": [values["workloadPlane"]]}
    if mtu is not None:
        workload["mtu"] = mtu
    document = {
        "apiVersion": "kubesalt.io/v1alpha1",
        "kind": "BootstrapConfiguration",
        "networks": {
            "controlPlane": {"cidr": [values["controlPlane"]]},
            "workloadPlane": workload,
            "pods": values["pods"],
            "services": values["services"],
        },
        "apiServer": {"host": values["host"], "port": port},
        "ca": {"minion": "cp1"},
        "archives": ["/srv/kubesalt.iso"],
    }
    cfg, problems = config.validate(document)
    assert problems == [], problems
    return cfg


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in objects}


def pod_spec(cfg: dict) -> dict:
    return cni.daemonset(cfg)["spec"]["template"]["spec"]


def env(cfg: dict) -> dict[str, object]:
    return {item["name"]: item.get("value") for item in pod_spec(cfg)["containers"][0]["env"]}


def tolerates(tolerations: list[dict], key: str, effect: str) -> bool:
    """Whether a taint (key, effect, any value) is tolerated, by the API's matching rules."""
    return any(
        t.get("operator", "Equal") == "Exists"
        and t.get("key", key) == key
        and t.get("effect", effect) == effect
        for t in tolerations
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("mtu", [None, 9000])
def test_every_object_is_valid_for_kubernetes_1_33(family, mtu):
    objects = cni.objects(cluster_config(family, mtu), NODES)
    assert [obj["kind"] for obj in objects] == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ]
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {err.message}")


def test_an_unknown_field_is_refused_by_the_schema_check():
    broken = cni.service_account()
    broken["metadata"]["nmae"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError, match="'nmae' was unexpected"):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_the_objects_do_not_depend_on_the_nodes():
    cfg = cluster_config()
    assert cni.objects(cfg, NODES) == cni.objects(cfg, NODES[:1])


@pytest.mark.parametrize(
    ("family", "mtu", "expected"),
    [("ipv4", 9000, 8980), ("ipv4", 1500, 1480), ("ipv6", 9000, 8952), ("ipv6", 1500, 1452)],
)
def test_a_set_mtu_becomes_the_pods_mtu_minus_the_tunnel_overhead(family, mtu, expected):
    cfg = cluster_config(family, mtu)
    conflist = json.loads(by_kind(cni.objects(cfg, NODES))["ConfigMap"]["data"]["cni-conf.json"])
    assert conflist["plugins"][0]["mtu"] == expected
    assert "--auto-mtu=false" in cni.args(cfg)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_without_mtu_kube_router_detects_it(family):
    cfg = cluster_config(family)
    conflist = cni.cni_config(cfg)
    assert "mtu" not in conflist["plugins"][0]
    assert not [arg for arg in cni.args(cfg) if arg.startswith("--auto-mtu")]


def test_the_cni_configuration_is_a_bridge_with_host_local_ipam_and_portmap():
    data = cni.config_map(cluster_config())["data"]
    assert data["cni-conf.json"].endswith("\n")
    conflist = json.loads(data["cni-conf.json"])
    bridge, portmap = conflist["plugins"]
    # No ranges: kube-router writes the node's podCIDRs into the IPAM at start.
    assert bridge == {
        "name": "kubernetes",
        "type": "bridge",
        "bridge": "kube-bridge",
        "isDefaultGateway": True,
        "ipam": {"type": "host-local"},
    }
    assert portmap == {"type": "portmap", "capabilities": {"snat": True, "portMappings": True}}
    install = pod_spec(cluster_config())["initContainers"][0]["command"][2]
    assert f"mv ${{TMP}} {cni.CNI_CONF_FILE};" in install
    assert "cp /etc/kube-router/cni-conf.json ${TMP};" in install


def test_ipv4_arguments_name_the_pod_and_service_networks_and_the_matrix_ports():
    assert cni.args(cluster_config()) == [
        "--run-router=true",
        "--run-firewall=true",
        "--run-service-proxy=false",
        "--bgp-graceful-restart=true",
        "--bgp-port=179",
        "--health-port=20244",
        "--cluster-cidr=10.233.0.0/16",
        "--service-cluster-ip-range=10.96.0.0/12",
    ]


def test_an_ipv6_cluster_turns_ipv4_off_and_generates_the_router_id():
    arguments = cni.args(cluster_config("ipv6"))
    assert "--cluster-cidr=fd00:233::/56" in arguments
    assert "--service-cluster-ip-range=fd00:96::/112" in arguments
    assert arguments[-3:] == ["--enable-ipv4=false", "--enable-ipv6=true", "--router-id=generate"]


@pytest.mark.parametrize(("family", "host"), [("ipv4", "10.0.0.100"), ("ipv6", "fd00:1::100")])
def test_the_api_server_is_the_cluster_endpoint_not_the_service_ip(family, host):
    values = env(cluster_config(family, port=7443))
    assert values["KUBERNETES_SERVICE_HOST"] == host  # unbracketed: client-go joins host and port
    assert values["KUBERNETES_SERVICE_PORT"] == "7443"
    assert values["KUBE_ROUTER_CNI_CONF_FILE"] == "/etc/cni/net.d/10-kuberouter.conflist"


def test_the_daemonset_runs_on_every_node_control_plane_included():
    spec = pod_spec(cluster_config())
    tolerations = spec["tolerations"]
    assert tolerates(tolerations, "node-role.kubernetes.io/control-plane", "NoSchedule")
    assert tolerates(tolerations, "node.kubernetes.io/not-ready", "NoSchedule")
    assert tolerates(tolerations, "node.kubernetes.io/unreachable", "NoExecute")
    assert tolerates(tolerations, "example.com/anything", "NoExecute")
    assert "nodeSelector" not in spec and "affinity" not in spec
    assert spec["hostNetwork"] is True
    assert spec["priorityClassName"] == "system-node-critical"


def test_both_containers_run_the_pinned_image_and_the_probe_uses_the_matrix_port():
    spec = pod_spec(cluster_config())
    pinned = image("kube-router").pinned_reference
    assert [c["image"] for c in spec["initContainers"] + spec["containers"]] == [pinned, pinned]
    assert pinned.startswith("docker.io/cloudnativelabs/kube-router:v2.11.1")
    probe = spec["containers"][0]["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": ports.port_number("kube-router-health")}


def test_the_service_account_is_bound_to_a_read_only_cluster_role():
    objects = by_kind(cni.objects(cluster_config(), NODES))
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-router", "namespace": "kube-system"}
    ]
    assert objects["DaemonSet"]["spec"]["template"]["spec"]["serviceAccountName"] == "kube-router"
    verbs = {verb for rule in objects["ClusterRole"]["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}


def test_the_image_registry_is_carried_by_the_iso_and_served_by_the_mirror():
    registry = image("kube-router").repository.split("/", 1)[0]
    assert registry in containerd.MIRRORED_REGISTRIES
    manifest = load_manifest(REPO / "iso" / "manifest.yaml")
    assert manifest.registry_for(registry) is not None


def test_kube_router_ports_open_from_the_workload_plane_on_every_kubelet_node():
    cfg = cluster_config()
    for role in sorted(roles.KUBELET_ROLES):
        zone = firewall.zone_xml(cfg, [role], {})
        assert '<port port="179" protocol="tcp"/>' in zone, role
        assert '<source address="10.1.0.0/24"/>' in zone, role
        assert '<protocol value="4"/>' in zone, role
        # The health and GoBGP API ports stay local: no rule opens them.
        assert 'port="20244"' not in zone and 'port="50051"' not in zone, role


def test_ipip_has_no_port_and_is_named_with_its_protocol_numbers():
    bad = yaml.safe_load(
        "ports: [{name: t, roles: [node], protocol: ipip, port: 4, listener: l, bind: b,"
        " from: [anyone]}]"
    )
    with pytest.raises(ports.MatrixError, match="given for protocol ipip, which has no ports"):
        ports.validate_matrix(bad)
    assert "| – | ipip (IP proto 4; 41 over IPv6) |" in ports.markdown_table()


def test_ipip_open_to_anyone_admits_both_families():
    matrix = ports.validate_matrix(
        yaml.safe_load(
            "ports: [{name: t, roles: [node], protocol: ipip, listener: l, bind: b,"
            " from: [anyone]}]"
        )
    )
    zone = firewall.desired_zone(cluster_config(), [roles.NODE], {}, matrix)
    assert zone.protocols == ("4", "41")


def test_the_iso_build_refuses_an_image_from_an_undeclared_registry(monkeypatch):
    manifest = load_manifest(REPO / "iso" / "manifest.yaml")
    assert build.selected_flavour(manifest, "debian12").images  # every registry declared
    stray = Image("quay.io/example/tool", "v1", None)
    monkeypatch.setattr(isobuild_images, "kubernetes_images", lambda version=None: [stray])
    with pytest.raises(ManifestError, match=r"image quay.io/example/tool:v1: its registry quay.io"):
        build.selected_flavour(manifest, "debian12")
