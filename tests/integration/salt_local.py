"""Run `salt-call --local` against this repository's salt/ and pillar/ trees.

A throwaway root_dir per instance; optionally inside a network namespace so the
minion sees only the interfaces a test built.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
SALT_CALL = pathlib.Path(sys.executable).with_name("salt-call")


class SaltLocal:
    def __init__(self, root: pathlib.Path, config_path: pathlib.Path, netns: str | None = None):
        self.root = root
        self.config_path = config_path
        self.netns = netns
        conf_dir = root / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        minion = {
            "id": "node-under-test",
            "root_dir": str(root),
            "file_client": "local",
            "file_roots": {"base": [str(REPO / "salt")]},
            "pillar_roots": {"base": [str(REPO / "pillar")]},
            "module_dirs": [str(REPO / "salt" / "_modules")],
            "pillar_dirs": [str(REPO / "salt" / "_pillar")],
            "ext_pillar": [{"kubesalt": {"config": str(config_path)}}],
            "log_level_logfile": "info",
        }
        (conf_dir / "minion").write_text(yaml.safe_dump(minion))
        self.conf_dir = conf_dir

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        command = [str(SALT_CALL), "-c", str(self.conf_dir), "--local", "--retcode-passthrough"]
        command += ["--out=json", *args]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def call(self, *args: str):
        """Run an execution function and return its decoded result."""
        return json.loads(self.run(*args, check=True).stdout)["local"]

    def grains_file(self) -> dict:
        path = self.root / "conf" / "grains"
        return yaml.safe_load(path.read_text()) if path.exists() else {}
