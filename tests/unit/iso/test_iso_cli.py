"""``iso/build`` as a command: usage errors exit 2, build failures exit 1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubesalt_isobuild import build

ROOT = Path(__file__).resolve().parents[3]


def test_missing_flavour_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        build.main(["--out", "/tmp/x"], project=ROOT)
    assert info.value.code == 2
    assert "--flavour" in capsys.readouterr().err


def test_fill_cache_needs_from(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        build.main(["--flavour", "lab", "--out", str(tmp_path), "--fill-cache"], project=ROOT)
    assert info.value.code == 2
    assert "--fill-cache needs --from DIR" in capsys.readouterr().err


def test_unknown_flavour_exits_2_naming_the_defined_ones(capsys, tmp_path):
    assert build.main(["--flavour", "nope", "--out", str(tmp_path)], project=ROOT) == 2
    err = capsys.readouterr().err
    assert "flavour 'nope' is not defined; defined: debian12, el9, lab" in err


def test_unpinned_artifacts_exit_1_listing_them(capsys, tmp_path):
    code = build.main(["--flavour", "debian12", "--out", str(tmp_path)], project=ROOT)
    assert code == 1
    err = capsys.readouterr().err
    assert "deb kubelet 1.33.5-1.1 (amd64)" in err
    assert "--allow-unpinned" in err


def test_the_wrapper_runs_from_anywhere(tmp_path):
    proc = subprocess.run(
        [str(ROOT / "iso/build"), "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "--flavour" in proc.stdout and "--from" in proc.stdout
