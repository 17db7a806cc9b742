"""What ships where (docs/iso.md#the-kubesalt-wheel): the wheel every node installs holds the
run-time package `kubesalt` alone; the lab and the ISO build are top-level packages of their
own, which no run-time code imports."""

from __future__ import annotations

import ast
import os
import pathlib
import tomllib
import zipfile
from fnmatch import fnmatchcase

from kubesalt_isobuild import build

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "src" / "kubesalt"
# Code that runs on the nodes: the package and the Salt tree whose loader modules import it.
RUNTIME_TREES = (RUNTIME, ROOT / "salt")
APART = {"kubesalt_lab", "kubesalt_isobuild"}


def imported_modules(source: str) -> set[str]:
    """Every absolute module an `import` or `from ... import` of `source` names."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
    return found


def apart_imports(source: str) -> set[str]:
    return {name for name in imported_modules(source) if name.split(".")[0] in APART}


def package_files(package: pathlib.Path) -> set[str]:
    """The files of a source package, as wheel paths (caches left out, as the wheel does)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                out.add((pathlib.Path(dirpath) / name).relative_to(package.parent).as_posix())
    return out


def test_the_import_walk_sees_the_lab_and_the_iso_build_in_every_spelling():
    source = (
        "import os\n"
        "import kubesalt_lab.model\n"
        "from kubesalt_isobuild import oci\n"
        "from kubesalt import config\n"
        "from . import sibling\n"
        "def later():\n"
        "    from kubesalt_lab.host import write_node_files\n"
    )
    assert apart_imports(source) == {"kubesalt_lab.model", "kubesalt_isobuild", "kubesalt_lab.host"}


def test_no_run_time_module_imports_the_lab_or_the_iso_build():
    modules = [path for tree in RUNTIME_TREES for path in sorted(tree.rglob("*.py"))]
    assert len(modules) > 40  # the walk reached the package and the loader modules
    offending = {
        str(path.relative_to(ROOT)): sorted(apart_imports(path.read_text()))
        for path in modules
        if apart_imports(path.read_text())
    }
    assert offending == {}, "run-time code must not import the lab or the ISO build"
    assert any("kubesalt.kubeadm" in imported_modules(path.read_text()) for path in modules)


def test_the_iso_kubesalt_wheel_holds_the_run_time_package_and_nothing_else(tmp_path):
    wheel = build.build_kubesalt_wheel(ROOT, "9.9.9", tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        top_level = zf.read("kubesalt-9.9.9.dist-info/top_level.txt").decode()
    info = {name for name in names if name.startswith("kubesalt-9.9.9.dist-info/")}
    assert names - info == package_files(RUNTIME)
    assert top_level == "kubesalt\n"
    assert {name.split("/")[0] for name in names} == {"kubesalt", "kubesalt-9.9.9.dist-info"}
    assert "kubesalt/data/images.yaml" in names
    assert "kubesalt/bootstrap/__main__.py" in names


def test_the_iso_kubesalt_wheel_holds_no_lab_iso_build_or_test_code(tmp_path):
    wheel = build.build_kubesalt_wheel(ROOT, "9.9.9", tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        sources = {name: zf.read(name).decode() for name in names if name.endswith(".py")}
    parts = [pathlib.PurePosixPath(name).parts for name in names]
    assert not [name for name in names if APART & set(pathlib.PurePosixPath(name).parts)]
    assert not [p for p in parts if {"standins", "tests", "test"} & set(p)]
    assert not [p for p in parts if p[-1].startswith("test_") or p[-1] == "conftest.py"]
    assert {
        name: apart_imports(text) for name, text in sources.items() if apart_imports(text)
    } == {}


def test_the_wheel_requires_what_pyproject_declares(tmp_path):
    wheel = build.build_kubesalt_wheel(ROOT, "9.9.9", tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read("kubesalt-9.9.9.dist-info/METADATA").decode().splitlines()
    requires = [
        line.removeprefix("Requires-Dist: ") for line in meta if line.startswith("Requires-Dist:")
    ]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert requires == project["dependencies"]


def test_the_developer_install_holds_every_package_under_src():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]
    every = {
        init.parent.relative_to(ROOT / "src").as_posix().replace("/", ".")
        for init in (ROOT / "src").rglob("__init__.py")
    }
    # setuptools matches `include` against dotted package names with fnmatch, case-sensitive.
    found = {name for name in every if any(fnmatchcase(name, pat) for pat in find["include"])}
    assert found == every
    assert {"kubesalt", "kubesalt_lab", "kubesalt_lab.standins", "kubesalt_isobuild"} <= found
