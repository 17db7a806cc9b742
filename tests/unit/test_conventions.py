"""Project conventions, enforced: every loader module and public function is documented.

The documentation hook (docs/development.md): a public execution function without a docstring
or a `CLI Example:` fails here, as does a loader module without `__virtualname__`.
"""

import ast
import pathlib

import pytest

SALT = pathlib.Path(__file__).resolve().parents[2] / "salt"
LOADER_DIRS = ("_modules", "_states", "_runners", "_pillar", "_roster")
LOADER_FILES = sorted(path for kind in LOADER_DIRS for path in (SALT / kind).glob("*.py"))


def _tree(path):
    return ast.parse(path.read_text(), filename=str(path))


def _assigned_names(tree):
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _public_functions(tree):
    return [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    ]


@pytest.mark.parametrize("path", LOADER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_loader_module_has_virtualname_and_virtual(path):
    tree = _tree(path)
    assert "__virtualname__" in _assigned_names(tree), f"{path.name} lacks __virtualname__"
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "__virtual__" in functions, f"{path.name} lacks __virtual__"


EXECUTION_FILES = sorted(
    path for kind in ("_modules", "_runners") for path in (SALT / kind).glob("*.py")
)


@pytest.mark.parametrize("path", EXECUTION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_public_functions_have_a_cli_example(path):
    missing = [
        node.name
        for node in _public_functions(_tree(path))
        if "CLI Example:" not in (ast.get_docstring(node) or "")
    ]
    assert not missing, f"{path.name}: no docstring with 'CLI Example:' for {missing}"


def test_there_are_loader_modules_to_check():
    assert len(LOADER_FILES) >= 3


def test_test_files_have_unique_names_across_the_test_folders():
    # The test folders are not packages: pytest imports each file by its base name, and two
    # files of one name stop the whole session at collection ("import file mismatch").
    tests = pathlib.Path(__file__).resolve().parents[1]
    seen = {}
    for path in sorted(tests.rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
