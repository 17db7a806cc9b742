"""The artifact manifest: the real one is valid, and every kind of mistake is named."""

from __future__ import annotations

import copy
import importlib.metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from kubesalt_isobuild import wheels
from kubesalt_isobuild.errors import ManifestError, UnknownFlavourError
from kubesalt_isobuild.manifest import load_manifest, parse_manifest

ROOT = Path(__file__).resolve().parents[3]
SHA = "a" * 64
BASE = {
    "schema": 1,
    "sources": {
        "deb": {
            "type": "apt",
            "url": "http://x/debian",
            "suite": "bookworm",
            "components": ["main"],
        },
        "rpm": {"type": "yum", "url": "http://x/rpm"},
        "idx": {"type": "pypi", "url": "http://x/simple"},
    },
    "flavours": {
        "f": {
            "arch": "amd64",
            "packages": [
                {"name": "p", "version": "1-1", "arch": "amd64", "sha256": SHA, "source": "deb"}
            ],
            "images": [{"name": "registry.k8s.io/pause", "tag": "3.10", "digest": "sha256:" + SHA}],
            "wheel_source": "idx",
            "wheels": [{"name": "salt", "version": "3008.3", "sha256": SHA}],
        }
    },
}


def problems(edit) -> list[str]:
    data = copy.deepcopy(BASE)
    edit(data)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, ROOT / "iso" / "manifest.yaml")
    return info.value.problems


def test_the_project_manifest_is_valid_and_has_the_three_flavours():
    manifest = load_manifest(ROOT / "iso" / "manifest.yaml")
    assert set(manifest.flavours) >= {"debian12", "el9", "lab"}
    deb = manifest.flavours["debian12"]
    assert {p.name for p in deb.packages} == {
        "kubelet",
        "kubeadm",
        "kubectl",
        "cri-tools",
        "kubernetes-cni",
    }
    assert {p.kind for p in deb.packages} == {"deb"}
    assert {p.kind for p in manifest.flavours["el9"].packages} == {"rpm"}
    assert deb.kubernetes_images and manifest.flavours["el9"].kubernetes_images
    lab = manifest.flavours["lab"]
    assert not lab.kubernetes_images
    assert all(i.build and i.digest for i in lab.images)
    assert {w.name.lower() for w in lab.wheels} >= {"salt", "pyzmq", "pyyaml", "netaddr"}


def test_kubernetes_packages_match_the_pinned_kubernetes_version():
    images = pytest.importorskip("kubesalt.kubeadm.images")
    version = images.kubernetes_version().lstrip("v")
    manifest = load_manifest(ROOT / "iso" / "manifest.yaml")
    for flavour in ("debian12", "el9"):
        for pkg in manifest.flavours[flavour].packages:
            if pkg.name in ("kubelet", "kubeadm", "kubectl"):
                assert pkg.version.startswith(version + "-"), (flavour, pkg)


def test_wheels_are_pinned_to_constraints_txt():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-").replace(".", "-")] = version.strip()
    lab = load_manifest(ROOT / "iso" / "manifest.yaml").flavours["lab"]
    for wheel in lab.wheels:
        key = wheel.name.lower().replace("_", "-").replace(".", "-")
        if key in pins:
            assert wheel.version == pins[key], wheel.name
    assert all(w.sha256 for w in lab.wheels)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["flavours"]["f"]["packages"][0].update(sha256="abc"),
         "flavours.f.packages[0].sha256: 'abc' is not a sha256"),
        (lambda d: d["flavours"]["f"]["packages"][0].pop("sha256"),
         "flavours.f.packages[0].sha256: is required (write null"),
        (lambda d: d["flavours"]["f"]["packages"][0].update(source="nope"),
         "flavours.f.packages[0].source: 'nope' is not an apt or yum source"),
        (lambda d: d["flavours"]["f"]["packages"][0].pop("version"),
         "flavours.f.packages[0].version: is required"),
        (lambda d: d["flavours"]["f"]["packages"][0].update(colour="red"),
         "flavours.f.packages[0].colour: unknown key"),
        (lambda d: d["flavours"]["f"]["images"][0].update(name="Pause"),
         "flavours.f.images[0].name: 'Pause' is not valid"),
        (lambda d: d["flavours"]["f"]["images"][0].update(digest="sha256:12"),
         "flavours.f.images[0].digest: 'sha256:12' is not sha256:<64 hex digits> or null"),
        (lambda d: d["flavours"]["f"]["images"][0].update(build="nowhere"),
         "flavours.f.images[0].build: 'nowhere': no image.yaml"),
        (lambda d: d["flavours"]["f"]["images"].append(dict(d["flavours"]["f"]["images"][0])),
         "flavours.f.images: registry.k8s.io/pause:3.10 is listed twice"),
        (lambda d: d["flavours"]["f"].update(wheel_source="deb"), "flavours.f.wheel_source: 'deb' is not a pypi"),
        (lambda d: d["flavours"]["f"].update(arch="sparc"), "flavours.f.arch: 'sparc' is not one of"),
        (lambda d: d["flavours"]["f"].update(resolve=[{"sources": ["rpm"], "roots": ["x"]}]),
         "flavours.f.resolve[0].release: is required for yum sources"),
        (lambda d: d["flavours"]["f"].update(resolve=[{"sources": ["rpm", "deb"], "roots": ["x"],
                                                        "release": "9"}]),
         "flavours.f.resolve[0].sources: mixes apt and yum sources"),
        (lambda d: d["flavours"]["f"].update(resolve=[{"sources": ["deb"]}]),
         "flavours.f.resolve[0].roots: is required"),
        (lambda d: d["sources"]["deb"].update(type="ftp"), "sources.deb.type: 'ftp' is not one of"),
        (lambda d: d["sources"]["deb"].pop("components"), "sources.deb.components: is required"),
        (lambda d: d.update(schema=2), "schema: 2 is not a supported schema"),
        (lambda d: d.update(flavours={}), "flavours: at least one flavour is required"),
        (lambda d: d["flavours"].update(Bad={"arch": "amd64"}), "flavours.Bad: flavour names are lowercase"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_with_its_path(edit, expected):
    found = problems(edit)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once():
    def edit(d):
        d["flavours"]["f"]["packages"][0]["sha256"] = "x"
        d["flavours"]["f"]["images"][0]["digest"] = "y"
        d["sources"]["rpm"]["type"] = "zip"

    assert len(problems(edit)) == 3


def test_the_error_message_lists_the_problems_and_the_file():
    with pytest.raises(ManifestError) as info:
        parse_manifest({"schema": 1, "flavours": {"f": {"arch": "x"}}}, Path("/m.yaml"))
    assert str(info.value).startswith("/m.yaml is invalid (1 problem(s)):\n  - flavours.f.arch")


def test_an_unknown_flavour_names_the_defined_ones():
    manifest = parse_manifest(copy.deepcopy(BASE), ROOT / "iso" / "m.yaml")
    with pytest.raises(UnknownFlavourError, match=r"flavour 'x' is not defined; defined: f"):
        manifest.flavour("x")


def test_null_pins_are_allowed_and_unquoted_versions_become_strings():
    data = copy.deepcopy(BASE)
    data["flavours"]["f"]["packages"][0]["sha256"] = None
    data["flavours"]["f"]["images"][0]["digest"] = None
    data["flavours"]["f"]["wheels"][0]["version"] = 3.1
    flavour = parse_manifest(data, ROOT / "iso" / "m.yaml").flavours["f"]
    assert flavour.packages[0].sha256 is None and flavour.images[0].digest is None
    assert flavour.wheels[0].version == "3.1"


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("flavours: [\n")
    with pytest.raises(ManifestError, match="is not valid YAML"):
        load_manifest(bad)


def test_anchor_keys_are_ignored(tmp_path):
    data = copy.deepcopy(BASE)
    data["x-wheels"] = data["flavours"]["f"]["wheels"]
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_manifest(path).flavours["f"].wheels[0].name == "salt"


# The nodes' interpreter (docs/iso.md): CPython 3.11 on x86-64 Linux, for dependency markers.
NODE_PYTHON = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


def installed_closure(root: str) -> dict[str, str]:
    """{normalized name: version} of `root` and everything it requires on the nodes'
    Python, read from this virtualenv (installed with constraints.txt, the manifest's pins)."""
    found, todo = {}, [root]
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        key = wheels.normalize(dist.metadata["Name"])
        if key in found:
            continue
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(NODE_PYTHON):
                todo.append(requirement.name)
    return found


def test_every_flavour_carries_the_kubernetes_client_and_its_dependencies():
    closure = installed_closure("kubernetes")
    assert {"kubernetes", "urllib3", "pydantic", "websocket-client"} <= set(closure)
    manifest = load_manifest(ROOT / "iso" / "manifest.yaml")
    for name, flavour in manifest.flavours.items():
        listed = {wheels.normalize(w.name): w.version for w in flavour.wheels}
        missing = {dist: v for dist, v in closure.items() if listed.get(dist) != v}
        assert missing == {}, f"flavour {name} lacks these wheels (or pins another version)"
