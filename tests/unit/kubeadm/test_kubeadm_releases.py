"""Kubernetes 1.34 beside 1.33: kubeadm 1.34's output file by file (reference_vectors_1_34), the
choice of the version a node and the cluster render (inventory > configuration > archive),
and the errors for a release kubesalt does not support."""

import pathlib
import shutil

import pytest
import reference_vectors_1_34 as v134
import yaml
from conftest import NOW, REGISTRY
from reference_vectors import ALL_ROLES, APISERVER, CONTROLLER_MANAGER, SCHEDULER, config

from kubesalt import inventory
from kubesalt.cluster import coredns, kubeadm_objects, kubeproxy, preview, render
from kubesalt.config import load_file
from kubesalt.kubeadm import RenderError, cluster, images, kubelet, manifests, paths, releases
from kubesalt.kubeadm import render as _render
from kubesalt.kubeadm.model import Layout, Node
from tests.unit.cluster.configs import NODES, cluster_config
from tests.unit.cluster.test_preview import BOOTSTRAP as BOOTSTRAP_FILE
from tests.unit.kubeadm.test_render_node_cli import BOOTSTRAP, CP1, command_of, run

CP = frozenset({"control-plane", "etcd", "node"})
K = "/etc/kubernetes"
KUBELET_DIR = "/var/lib/kubelet"
ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cp1_134():
    return Node("cp1", "10.0.0.10", ALL_ROLES, first=True, kubernetes_version=v134.VERSION)


@pytest.fixture(scope="module")
def files_134(authorities, cp1_134):
    return _render.render_node(config(), cp1_134, authorities, registry=REGISTRY, now=NOW)


@pytest.fixture(scope="module")
def files_133(authorities):
    cp1 = Node("cp1", "10.0.0.10", ALL_ROLES, first=True)
    return _render.render_node(config(), cp1, authorities, registry=REGISTRY, now=NOW)


def pod(files, name):
    return yaml.safe_load(files[f"{K}/manifests/{name}.yaml"].content)


def container(files, name):
    return pod(files, name)["spec"]["containers"][0]


# --- images ----------------------------------------------------------------------------------


def test_the_supported_releases_and_the_default():
    assert images.supported_versions() == ("v1.33.5", "v1.34.2")
    assert images.default_version() == "v1.33.5"
    assert images.kubernetes_version() == "v1.33.5"  # a checkout carries the default


def test_the_images_of_1_34():
    pinned = images.all_images(v134.VERSION)
    assert {name: image.reference for name, image in pinned.items()} == v134.IMAGES
    assert images.sandbox_image("1.34.2") == "registry.k8s.io/pause:3.10.1"


def test_a_release_with_a_minor_kubesalt_has_no_behaviour_for_is_refused(monkeypatch):
    monkeypatch.setattr(releases, "RELEASES", {"1.33": releases.RELEASES["1.33"]})
    with pytest.raises(RenderError, match=r"Kubernetes v1.34.2 has images but no entry"):
        releases.release("v1.34.2")


def test_releases_differ_where_kubeadm_does():
    assert releases.release("v1.33.5") == releases.Release(
        "1.33", etcd_graduated_flags=False, node_local_cri_socket=False
    )
    assert releases.release("v1.34.2") == releases.Release(
        "1.34", etcd_graduated_flags=True, node_local_cri_socket=True
    )


# --- static pods -----------------------------------------------------------------------------


def test_etcd_command_of_1_34(files_134):
    assert container(files_134, "etcd")["command"] == v134.ETCD_FIRST
    cp2 = Node(
        "cp2", "10.0.0.11", CP, etcd_members=(("cp1", "10.0.0.10"),), kubernetes_version="v1.34.2"
    )
    assert manifests.etcd_command(config(), cp2) == v134.ETCD_CP2


def test_control_plane_commands_of_1_34_are_those_of_1_33(files_134):
    assert container(files_134, "kube-apiserver")["command"] == APISERVER
    assert container(files_134, "kube-controller-manager")["command"] == CONTROLLER_MANAGER
    assert container(files_134, "kube-scheduler")["command"] == SCHEDULER


@pytest.mark.parametrize(
    "name", ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
)
def test_static_pods_of_1_34_differ_from_1_33_only_by_image_and_etcd_flags(
    files_133, files_134, name
):
    new, old = pod(files_134, name), pod(files_133, name)
    assert new["spec"]["containers"][0].pop("image") == v134.IMAGES[name]
    old["spec"]["containers"][0].pop("image")
    if name == "etcd":
        new["spec"]["containers"][0].pop("command")
        old["spec"]["containers"][0].pop("command")
    for manifest in (new, old):  # over certificates issued anew by each render
        manifest["metadata"]["annotations"].pop("kubesalt.io/config-digest")
    # Probes (etcd's /livez and /readyz on 2381), volumes, resources, annotations: unchanged.
    assert new == old


# --- kubelet and containerd ------------------------------------------------------------------


def test_kubelet_files_of_1_34(files_134):
    assert files_134[f"{KUBELET_DIR}/kubeadm-flags.env"].content.decode() == v134.FLAGS_ENV
    instance = files_134[f"{KUBELET_DIR}/instance-config.yaml"]
    assert (instance.content.decode(), instance.mode) == (v134.INSTANCE_CONFIG, 0o644)
    config_yaml = yaml.safe_load(files_134[f"{KUBELET_DIR}/config.yaml"].content)
    assert config_yaml == v134.KUBELET_CONFIG


def test_1_34_adds_instance_config_yaml_and_nothing_else(files_133, files_134):
    assert set(files_134) - set(files_133) == {f"{KUBELET_DIR}/instance-config.yaml"}
    assert set(files_133) <= set(files_134)


def test_containerd_sandbox_image_follows_the_node(files_134):
    text = files_134["/etc/containerd/config.toml"].content.decode()
    assert '  sandbox_image = "registry.k8s.io/pause:3.10.1"\n' in text


def test_the_kubelet_config_map_of_1_34_has_no_cri_socket():
    # The shared configuration: the CRI socket is patched in on each node only.
    cfg = cluster_config(kubernetes={"version": "v1.34.2"})
    assert "containerRuntimeEndpoint" not in kubelet.config(cfg, None)


def test_the_kubelet_absent_state_knows_instance_config_yaml_whatever_the_release():
    # a node moved back to 1.33 still holds the file 1.34 wrote
    for version in ("v1.33.5", "v1.34.2"):
        cfg = config(**{"kubernetes.version": version})
        listed = paths.component_files(cfg, "w1", paths.KUBELET, Layout(), False)
        assert f"{KUBELET_DIR}/instance-config.yaml" in listed, version


def test_stale_files_are_the_other_releases_kubelet_files():
    cfg = config(**{"kubernetes.version": "v1.34.2"})
    at_133 = Node("w1", "203.0.113.1", frozenset({"node"}), kubernetes_version="v1.33.5")
    at_134 = Node("w1", "203.0.113.1", frozenset({"node"}))
    stale = paths.stale_files(cfg, at_133, paths.KUBELET, Layout(), False)
    assert stale == [f"{KUBELET_DIR}/instance-config.yaml"]
    assert paths.stale_files(cfg, at_134, paths.KUBELET, Layout(), False) == []


def test_absent_states_know_instance_config_yaml_on_a_1_34_cluster():
    cfg = config(**{"kubernetes.version": "v1.34.2"})
    node = Node("w1", "203.0.113.1", frozenset({"node"}))
    listed = paths.node_files(cfg, node, Layout())
    assert listed[f"{KUBELET_DIR}/instance-config.yaml"] == paths.KUBELET
    assert f"{KUBELET_DIR}/instance-config.yaml" not in paths.node_files(config(), node, Layout())


# --- the cluster's API objects ---------------------------------------------------------------


def test_api_objects_follow_the_clusters_version():
    cfg = cluster_config(kubernetes={"version": "v1.34.2"})
    objects = {(o["kind"], o["metadata"]["name"]): o for o in kubeadm_objects.objects(cfg, NODES)}
    stored = yaml.safe_load(objects["ConfigMap", "kubeadm-config"]["data"]["ClusterConfiguration"])
    assert stored["kubernetesVersion"] == "v1.34.2"
    [proxy] = [o for o in kubeproxy.objects(cfg, NODES) if o["kind"] == "DaemonSet"]
    assert proxy["spec"]["template"]["spec"]["containers"][0]["image"] == v134.IMAGES["kube-proxy"]
    [dns] = [o for o in coredns.objects(cfg, NODES) if o["kind"] == "Deployment"]
    assert dns["spec"]["template"]["spec"]["containers"][0]["image"] == v134.IMAGES["coredns"]


# --- which version: inventory > configuration > archive --------------------------------------


def test_version_choice_inventory_then_configuration_then_archive():
    node = Node("cp1", "10.0.0.10", CP)
    recorded = Node("cp1", "10.0.0.10", CP, kubernetes_version="1.34.2")
    assert releases.node_version(config(), node) == "v1.33.5"  # the archive's
    cfg = config(**{"kubernetes.version": "v1.34.2"})
    assert releases.node_version(cfg, node) == "v1.34.2"  # the configuration's
    assert releases.node_version(config(), recorded) == "v1.34.2"  # the inventory's
    back = Node("cp1", "10.0.0.10", CP, kubernetes_version="v1.33.5")
    assert releases.node_version(cfg, back) == "v1.33.5"  # the inventory wins


def test_an_unsupported_version_is_refused_with_the_supported_list():
    with pytest.raises(
        RenderError,
        match=r"kubernetes.version is 'v1.35.0' but this kubesalt carries v1.33.5 and "
        r"supports v1.33.5, v1.34.2",
    ):
        releases.cluster_version(config(**{"kubernetes.version": "v1.35.0"}))
    node = Node("cp1", "10.0.0.10", CP, kubernetes_version="v1.34.0")
    with pytest.raises(
        RenderError,
        match=r"the inventory records Kubernetes 'v1.34.0' for node cp1: .*supported: "
        r"v1.33.5, v1.34.2",
    ):
        releases.node_version(config(), node)


def test_build_node_takes_the_version_the_pillar_records():
    pillar = {"cp1": {"roles": ["control-plane", "etcd", "node"], "kubernetes_version": "v1.34.2"}}
    assert cluster.recorded_version(pillar, "cp1") == "v1.34.2"
    assert cluster.recorded_version(pillar, "w9") is None
    built = cluster.build_node(
        config(), "cp1", cluster.roles_by_node(pillar), {"cp1": "10.0.0.10"},
        kubernetes_version=cluster.recorded_version(pillar, "cp1"),
    )  # fmt: skip
    assert built.kubernetes_version == "v1.34.2"


# --- the archive's release -------------------------------------------------------------------


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A kubesalt package directory with the real images.yaml, as images reads it."""
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "src/kubesalt/data/images.yaml", tmp_path / "data/images.yaml")
    monkeypatch.setattr(images.resources, "files", lambda _: tmp_path)
    images._releases.cache_clear()
    images._load.cache_clear()
    yield tmp_path
    images._releases.cache_clear()
    images._load.cache_clear()


def test_the_archive_release_recorded_in_the_wheel_is_the_archives(package):
    (package / images.ARCHIVE_RELEASE).write_text(images.archive_release_text("v1.34.2"))
    digest = "sha256:" + "e" * 64
    (package / images.ARCHIVE_DIGESTS).write_text(
        images.archive_digests_text({"registry.k8s.io/etcd:3.6.5-0": digest})
    )
    assert images.kubernetes_version() == "v1.34.2"
    assert images.image("etcd").pinned_reference == f"registry.k8s.io/etcd:3.6.5-0@{digest}"
    # Another release's images are not in this archive: by tag.
    assert images.image("etcd", "v1.33.5").pinned_reference == "registry.k8s.io/etcd:3.5.21-0"
    assert releases.cluster_version(config()) == "v1.34.2"


def test_a_bad_archive_release_is_refused(package):
    (package / images.ARCHIVE_RELEASE).write_text("kubernetesVersion: v1.30.0\n")
    with pytest.raises(RenderError, match=r"archive-release.yaml: kubernetesVersion is 'v1.30.0'"):
        images.kubernetes_version()


def test_a_release_listed_twice_is_refused():
    data = yaml.safe_load((ROOT / "src/kubesalt/data/images.yaml").read_text())
    data["releases"]["v1.33.5"] = data["releases"]["v1.34.2"]
    with pytest.raises(RenderError, match=r"release v1.33.5 is listed twice"):
        images.parse_releases(data)


# --- the inventory records a node's release --------------------------------------------------


def declared(tmp_path):
    node = inventory.Node("cp1", "10.0.0.10", ("control-plane", "etcd", "node"))
    (tmp_path / "cp1.yaml").write_text(yaml.safe_dump(node.to_document()))
    return str(tmp_path)


def test_record_kubernetes_version(tmp_path):
    directory = declared(tmp_path)
    assert inventory.record_kubernetes_version("cp1", "1.34.2", directory) is True
    assert inventory.record_kubernetes_version("cp1", "v1.34.2", directory) is False
    nodes = inventory.load(directory)
    assert inventory.pillar_nodes(nodes) == {
        "cp1": {"roles": ["control-plane", "etcd", "node"], "kubernetes_version": "v1.34.2"}
    }
    assert yaml.safe_load((tmp_path / "cp1.yaml").read_text())["kubernetes_version"] == "v1.34.2"
    assert oct((tmp_path / "cp1.yaml").stat().st_mode & 0o777) == "0o600"


def test_a_node_declared_again_keeps_its_recorded_release(tmp_path):
    directory = declared(tmp_path)
    inventory.record_kubernetes_version("cp1", "v1.34.2", directory)
    again = inventory.Node("cp1", "10.0.0.10", ("control-plane", "etcd", "node"))
    assert inventory.declare(again, cluster_config(), directory) is False
    assert inventory.load(directory)["cp1"].kubernetes_version == "v1.34.2"


def test_an_unsupported_recorded_release_is_refused(tmp_path):
    directory = declared(tmp_path)
    with pytest.raises(inventory.InventoryError, match=r"'v1.32.0' is not a release"):
        inventory.record_kubernetes_version("cp1", "v1.32.0", directory)
    with pytest.raises(inventory.InventoryError, match=r"node w9 is not declared"):
        inventory.record_kubernetes_version("w9", "v1.34.2", directory)
    document = yaml.safe_load((tmp_path / "cp1.yaml").read_text())
    (tmp_path / "cp1.yaml").write_text(yaml.safe_dump({**document, "kubernetes_version": "x"}))
    with pytest.raises(inventory.InventoryError, match=r"cp1.yaml: kubernetes_version: .*'x'"):
        inventory.load(directory)


# --- render-node and render-cluster --kubernetes-version ------------------------------------


def written_config(tmp_path):
    (tmp_path / "bootstrap.yaml").write_text(yaml.safe_dump(BOOTSTRAP))
    return tmp_path / "bootstrap.yaml"


def test_render_node_renders_the_release_asked(tmp_path):
    config_file = written_config(tmp_path)
    out = tmp_path / "out"
    result = run("--config", config_file, *CP1, "--first", "--out", out, "--kubernetes-version",
                 "v1.34.2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert command_of(out, "etcd") == v134.ETCD_FIRST
    assert (out / "var/lib/kubelet/kubeadm-flags.env").read_text() == v134.FLAGS_ENV
    assert (out / "var/lib/kubelet/instance-config.yaml").read_text() == v134.INSTANCE_CONFIG
    assert "render-node: 40 files for cp1" in result.stdout


def test_render_node_refuses_an_unsupported_release(tmp_path):
    config_file = written_config(tmp_path)
    result = run("--config", config_file, *CP1, "--out", tmp_path / "o", "--kubernetes-version",
                 "v1.35.0")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "render-node: error: --kubernetes-version: Kubernetes version 'v1.35.0' is not a "
        "release this kubesalt supports; supported: v1.33.5, v1.34.2\n"
    )
    assert not (tmp_path / "o").exists()


def test_render_cluster_renders_the_release_asked(capsys):
    status = preview.main(["--config", str(BOOTSTRAP_FILE), "--kubernetes-version", "1.34.2"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    cfg = load_file(str(BOOTSTRAP_FILE))
    cfg["kubernetes"]["version"] = "v1.34.2"
    assert list(yaml.safe_load_all(out)) == render(cfg, ())
    images_out = {
        c["image"]
        for doc in yaml.safe_load_all(out)
        if doc["kind"] in ("DaemonSet", "Deployment")
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images_out >= {v134.IMAGES["kube-proxy"], v134.IMAGES["coredns"]}


def test_render_cluster_refuses_an_unsupported_release(capsys):
    status = preview.main(["--config", str(BOOTSTRAP_FILE), "--kubernetes-version", "v1.3"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err == (
        "render-cluster: error: --kubernetes-version: Kubernetes version 'v1.3' is not a "
        "release this kubesalt supports; supported: v1.33.5, v1.34.2\n"
    )
