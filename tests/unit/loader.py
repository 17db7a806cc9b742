"""Import a Salt loader module of this repository (salt/_modules/x.py) as a Python module."""

import importlib.util
import pathlib

SALT_TREE = pathlib.Path(__file__).resolve().parents[2] / "salt"


def load(kind: str, name: str):
    """`load("_modules", "kubesalt_config")` -> the module object, dunders unset."""
    path = SALT_TREE / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"kubesalt_test_{kind.strip('_')}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
