"""scripts/render-cluster (kubesalt.cluster.preview): what kubesalt.cluster.render gives, as one
multi-document YAML in apply order, valid for Kubernetes 1.33, and an error for humans for
every bad input. Each case runs through main() and through the script, as operators run it."""

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from kubesalt import roles
from kubesalt.cluster import cluster_nodes, preview, render
from kubesalt.config import load_file
from tests.unit.cluster.configs import cluster_config
from tests.unit.cluster.schemas import validate

REPO = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "render-cluster"
CHECK_CONFIG = REPO / "scripts" / "kubesalt-check-config"
BOOTSTRAP = REPO / "bootstrap.yaml"
CONTROL_PLANE_ETCD = (roles.CONTROL_PLANE, roles.ETCD)
# Three control-plane nodes with stacked etcd, the first also the bootstrap and CA node, and
# a worker: as the inventory gives them, and as --node flags.
INVENTORY = {
    "cp1": roles.BOOTSTRAP_NODE_ROLES,
    "cp2": CONTROL_PLANE_ETCD,
    "cp3": CONTROL_PLANE_ETCD,
    "worker1": (roles.NODE,),
}
NODE_FLAGS = [arg for name, given in INVENTORY.items() for arg in ("--node", f"{name}:{','.join(given)}")]  # fmt: skip
EXAMPLE = "e.g. --node cp1:control-plane,etcd,node"
ROLE_LIST = "bootstrap, ca, control-plane, etcd, node"
# The labels and taint kubeadm 1.33's mark-control-plane gives a control-plane node.
CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "",
    "node.kubernetes.io/exclude-from-external-load-balancers": "",
}
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def script_env(**extra) -> dict:
    """The environment of a script run: this Python's prefix as the project's virtualenv, so
    the script runs here without re-executing itself."""
    return {**os.environ, "KUBESALT_VENV": sys.prefix, **extra}


def run_script(*args, python=(sys.executable,), env=None) -> tuple[int, str, str]:
    result = subprocess.run(
        [*python, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or script_env(),
    )
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(params=["main", "script"])
def render_cluster(request, capsys):
    """render-cluster with its arguments -> (exit status, stdout, stderr), run through
    preview.main() in this process or through scripts/render-cluster in a new one."""
    if request.param == "script":
        return run_script

    def run_main(*args):
        try:
            status = preview.main([str(arg) for arg in args])
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code
        out, err = capsys.readouterr()
        return status, out, err

    return run_main


def expected(config=BOOTSTRAP, inventory=INVENTORY) -> list[dict]:
    """What the orchestration applies, from the same configuration and inventory."""
    cfg = load_file(str(config)) if isinstance(config, pathlib.Path) else config
    return render(cfg, cluster_nodes(inventory))


def documents(text: str) -> list[dict]:
    return list(yaml.safe_load_all(text))


def nodes_of(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == "Node"]


# --- output --------------------------------------------------------------------------------


def test_the_script_is_executable_with_env_shebang():
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_stdout_is_what_render_gives_in_apply_order(render_cluster):
    status, out, err = render_cluster("--config", BOOTSTRAP, *NODE_FLAGS)
    assert (status, err) == (0, "")
    want = expected()
    assert len(want) > 20
    assert documents(out) == want
    assert out.startswith("---\n")
    assert out.count("\n---\n") == len(want) - 1  # one document per object


def test_out_writes_the_file_and_nothing_to_stdout(render_cluster, tmp_path):
    out_file = tmp_path / "cluster.yaml"
    status, out, err = render_cluster("--config", BOOTSTRAP, *NODE_FLAGS, "--out", out_file)
    want = expected()
    assert (status, out) == (0, "")
    assert err == f"render-cluster: {len(want)} objects written to {out_file}\n"
    assert documents(out_file.read_text()) == want


def test_out_replaces_an_earlier_preview(tmp_path):
    out_file = tmp_path / "cluster.yaml"
    out_file.write_text("stale: true\n" * 10_000)
    status, _, err = run_script("--config", BOOTSTRAP, "--out", out_file)
    assert status == 0, err
    assert documents(out_file.read_text()) == expected(inventory={})


def test_three_control_plane_cluster_is_valid_for_kubernetes_1_33():
    status, out, err = run_script("--config", BOOTSTRAP, *NODE_FLAGS)
    assert status == 0, err
    objects = documents(out)
    assert [obj["metadata"]["name"] for obj in nodes_of(objects)] == list(INVENTORY)
    for obj in objects:
        validate(obj)


def test_an_ipv6_cluster_is_rendered_from_its_file(tmp_path):
    cfg = cluster_config("ipv6")
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    status, out, err = run_script("--config", config_file, *NODE_FLAGS)
    assert status == 0, err
    objects = documents(out)
    assert objects == expected(cfg)
    for obj in objects:
        validate(obj)


def test_node_objects_carry_the_labels_and_taint_of_their_flags(render_cluster):
    status, out, _ = render_cluster("--config", BOOTSTRAP, *NODE_FLAGS)
    assert status == 0
    first = {f"node-role.kubernetes.io/{role}": "" for role in roles.BOOTSTRAP_NODE_ROLES}
    stacked = {f"node-role.kubernetes.io/{role}": "" for role in CONTROL_PLANE_ETCD}

    def control_plane(name, labels):
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {**labels, **CONTROL_PLANE_LABELS}},
            "spec": {"taints": [CONTROL_PLANE_TAINT]},
        }

    assert nodes_of(documents(out)) == [
        control_plane("cp1", first),
        control_plane("cp2", stacked),
        control_plane("cp3", stacked),
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "worker1", "labels": {"node-role.kubernetes.io/node": ""}},
        },
    ]


def test_nodes_come_in_name_order_whatever_the_flag_order(render_cluster):
    flags = ["--node", f"worker1:{roles.NODE}", "--node", f"cp2:{','.join(CONTROL_PLANE_ETCD)}"]
    status, out, _ = render_cluster("--config", BOOTSTRAP, *flags)
    assert status == 0
    assert [node["metadata"]["name"] for node in nodes_of(documents(out))] == ["cp2", "worker1"]


def test_a_node_without_a_kubelet_gets_no_node_object(render_cluster):
    status, out, _ = render_cluster("--config", BOOTSTRAP, "--node", f"ca1:{roles.CA}")
    assert status == 0
    assert nodes_of(documents(out)) == []


def test_without_node_flags_there_is_no_node_object(render_cluster):
    status, out, err = render_cluster("--config", BOOTSTRAP)
    assert (status, err) == (0, "")
    objects = documents(out)
    assert objects == expected(inventory={})
    assert objects and nodes_of(objects) == []


# --- errors --------------------------------------------------------------------------------

FLAG_ERRORS = [
    pytest.param(
        ["--node", "cp1"],
        f"--node 'cp1': expected NAME:ROLE[,ROLE...], {EXAMPLE}",
        id="no-colon",
    ),
    pytest.param(
        ["--node", ":node"],
        f"--node ':node': expected NAME:ROLE[,ROLE...], {EXAMPLE}",
        id="no-name",
    ),
    pytest.param(
        ["--node", "CP1:node"],
        "--node 'CP1:node': 'CP1' is not a valid node name; a node name is a lowercase "
        "RFC 1123 name, as Kubernetes requires: lowercase letters, digits, '-' and '.', each "
        "dot-separated part starting and ending with a letter or digit, at most 253 characters",
        id="bad-name",
    ),
    pytest.param(
        ["--node", "cp1:"],
        f"--node 'cp1:': no role given; give roles among {ROLE_LIST}, {EXAMPLE}",
        id="no-role",
    ),
    pytest.param(
        ["--node", "cp1:master,node"],
        f"--node 'cp1:master,node': unknown role(s) master; give roles among {ROLE_LIST}, "
        f"{EXAMPLE}",
        id="unknown-role",
    ),
    pytest.param(
        ["--node", "cp1:etcd", "--node", "cp1:node"],
        "--node 'cp1:node': node cp1 is already given by --node 'cp1:etcd'; give each node "
        "once, with all its roles",
        id="duplicate-node",
    ),
]


@pytest.mark.parametrize(("args", "message"), FLAG_ERRORS)
def test_a_bad_node_flag_exits_2_naming_flag_value_and_fix(render_cluster, tmp_path, args, message):
    out_file = tmp_path / "cluster.yaml"
    status, out, err = render_cluster("--config", BOOTSTRAP, *args, "--out", out_file)
    assert (status, out) == (2, "")
    assert err == f"render-cluster: error: {message}\n"
    assert not out_file.exists()


def test_out_a_directory_exits_2_before_rendering(render_cluster, tmp_path):
    status, out, err = render_cluster("--config", BOOTSTRAP, "--out", tmp_path)
    assert (status, out) == (2, "")
    assert err == (
        f"render-cluster: error: --out {tmp_path}: is a directory; give a file path, "
        f"e.g. --out {tmp_path}/cluster.yaml\n"
    )


def test_out_that_cannot_be_written_exits_1(render_cluster, tmp_path):
    out_file = tmp_path / "missing" / "cluster.yaml"
    status, out, err = render_cluster("--config", BOOTSTRAP, "--out", out_file)
    assert (status, out) == (1, "")
    assert err == (
        f"render-cluster: error: --out {out_file}: cannot write: No such file or directory; "
        "give a file path in an existing, writable directory\n"
    )


def test_missing_config_flag_exits_2_with_the_usage(render_cluster):
    status, out, err = render_cluster(*NODE_FLAGS)
    assert (status, out) == (2, "")
    assert err.startswith("usage: render-cluster [-h] --config FILE")
    assert err.endswith(
        "render-cluster: error: the following arguments are required: --config; "
        "see render-cluster --help\n"
    )


def check_config_lines(path) -> list[str]:
    """What kubesalt-check-config prints about `path`."""
    result = subprocess.run(
        [sys.executable, str(CHECK_CONFIG), str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    return result.stderr.splitlines()


def test_an_invalid_config_exits_2_listing_problems_as_check_config_does(render_cluster, tmp_path):
    document = yaml.safe_load(BOOTSTRAP.read_text())
    document["networks"]["pods"] = "10.233.0.0/33"
    del document["ca"]
    config_file = tmp_path / "bootstrap.yaml"
    config_file.write_text(yaml.safe_dump(document))
    status, out, err = render_cluster("--config", config_file, *NODE_FLAGS)
    assert (status, out) == (2, "")
    header, *problems = err.splitlines()
    assert header == f"render-cluster: error: --config {config_file}: 2 problems:"
    assert problems == check_config_lines(config_file)
    assert sorted(line.split(": ")[1].split(" ")[0] for line in problems) == ["ca", "networks.pods"]


def test_an_unreadable_config_exits_2_naming_the_file(render_cluster, tmp_path):
    missing = tmp_path / "nope.yaml"
    status, out, err = render_cluster("--config", missing)
    assert (status, out) == (2, "")
    assert err == (
        f"render-cluster: error: --config {missing}: 1 problem:\n"
        f"{missing}: (file): cannot be read: No such file or directory. "
        f"Fix: check that {missing} exists and is readable.\n"
    )


# --- the script's Python and package -------------------------------------------------------


def test_the_script_runs_its_own_package_ahead_of_an_installed_one(tmp_path):
    """From a checkout, the preview is of the code next to the script, whatever kubesalt the
    Python has installed (the development virtualenv may hold another checkout's)."""
    shadow = tmp_path / "kubesalt"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('an installed kubesalt was used')\n")
    status, out, err = run_script("--config", BOOTSTRAP, env=script_env(PYTHONPATH=str(tmp_path)))
    assert status == 0, err
    assert documents(out) == expected(inventory={})


def test_the_script_needs_only_pyyaml_netaddr_and_cryptography(tmp_path):
    """Like render-node: Python, PyYAML, netaddr and cryptography (with its cffi backend);
    no kubernetes client."""
    import _cffi_backend
    import cryptography
    import netaddr

    deps = tmp_path / "deps"
    deps.mkdir()
    for module in (yaml, netaddr, cryptography, _cffi_backend):
        where = pathlib.Path(module.__file__)
        where = where.parent if where.name == "__init__.py" else where  # a package: its directory
        (deps / where.name).symlink_to(where)
    # -S: no site-packages; no virtualenv to re-execute with.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(deps), "KUBESALT_VENV": str(tmp_path)}
    status, out, err = run_script("--config", BOOTSTRAP, python=(sys.executable, "-S"), env=env)
    assert status == 0, err
    assert documents(out) == expected(inventory={})


def test_without_the_dependencies_the_script_says_which_python_to_use(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "KUBESALT_VENV": str(tmp_path / "no-venv")}
    status, out, err = run_script("--config", BOOTSTRAP, python=(sys.executable, "-S"), env=env)
    assert (status, out) == (2, "")
    assert err.startswith("render-cluster: error: cannot import ")
    assert "a Python that has kubesalt's dependencies (PyYAML, netaddr, cryptography)" in err
    assert "(.venv, or set KUBESALT_VENV)" in err


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a virtualenv")
def test_a_python_without_the_dependencies_re_runs_with_the_project_virtualenv():
    env = {"PATH": "/usr/bin:/bin", "KUBESALT_VENV": sys.prefix}
    status, out, err = run_script("--config", BOOTSTRAP, python=(sys.executable, "-S"), env=env)
    assert status == 0, err
    assert documents(out) == expected(inventory={})
