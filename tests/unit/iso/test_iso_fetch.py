"""The offline cache and the pip command lines, without the network."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kubesalt_isobuild import wheels
from kubesalt_isobuild.cache import Store, closure_key
from kubesalt_isobuild.errors import DigestMismatchError, MissingArtifactError
from kubesalt_isobuild.model import Flavour, Python, Source, Wheel
from kubesalt_isobuild.util import sha256_file

FLAVOUR = Flavour("f", "", "amd64", python=Python("3.11", ("manylinux2014_x86_64", "any")))
PYPI = Source("pypi", "pypi", url="https://pypi.org/simple")


def test_offline_cache_missing_artifact_names_it_and_says_what_to_do(tmp_path):
    store = Store(tmp_path, offline=True)
    with pytest.raises(MissingArtifactError) as info:
        store.lookup("deb foo 1 (amd64)", "deb", "foo_1_amd64.deb", None)
    assert info.value.artifact == "deb foo 1 (amd64)"
    assert f"--from {tmp_path} --fill-cache" in str(info.value)


def test_filling_cache_returns_none_for_a_missing_file(tmp_path):
    assert Store(tmp_path, offline=False).lookup("x", "deb", "x.deb", None) is None


def test_a_cached_file_with_another_digest_is_a_mismatch(tmp_path):
    store = Store(tmp_path, offline=False)
    src = tmp_path / "src.deb"
    src.write_bytes(b"content")
    store.store("deb", "a.deb", src)
    assert store.lookup("deb a", "deb", "a.deb", sha256_file(src)) == tmp_path / "deb/a.deb"
    with pytest.raises(DigestMismatchError) as info:
        store.lookup("deb a", "deb", "a.deb", "0" * 64)
    assert info.value.expected == "0" * 64 and info.value.actual == sha256_file(src)
    assert "cache file" in str(info.value)


def test_closures_round_trip_and_keys_are_stable(tmp_path):
    store = Store(tmp_path, offline=True)
    what = {"roots": ["a", "b"], "arch": "amd64"}
    assert closure_key(what) == closure_key(dict(reversed(list(what.items()))))
    assert store.load_closure("deb", closure_key(what)) is None
    store.save_closure("deb", closure_key(what), what, [{"name": "a"}])
    assert store.load_closure("deb", closure_key(what)) == [{"name": "a"}]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("PyYAML-6.0.3-cp311-cp311-manylinux2014_x86_64.whl", ("pyyaml", "6.0.3")),
        ("jaraco_text-4.3.0-py3-none-any.whl", ("jaraco-text", "4.3.0")),
        ("salt-3008.3.tar.gz", ("salt", "3008.3")),
        ("backports.tarfile-1.2.0-py3-none-any.whl", ("backports-tarfile", "1.2.0")),
        ("README", None),
    ],
)
def test_dist_of(filename, expected):
    assert wheels.dist_of(filename) == expected


def test_pip_command_for_a_pinned_wheel(tmp_path):
    wheel = Wheel("pyzmq", "27.3.0", "a" * 64)
    cmd = wheels.pip_command([wheel], True, FLAVOUR, PYPI, tmp_path / "d", tmp_path / "r.txt")
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    for flag in ("--isolated", "--no-deps", "--only-binary=:all:", "--require-hashes"):
        assert flag in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.11"
    assert [cmd[i + 1] for i, c in enumerate(cmd) if c == "--platform"] == [
        "manylinux2014_x86_64",
        "any",
    ]
    assert wheels.requirement_line(wheel) == f"pyzmq==27.3.0 --hash=sha256:{'a' * 64}\n"


def test_pip_command_for_an_sdist(tmp_path):
    group = [Wheel("timelib", "0.3.0", None, sdist=True), Wheel("salt", "3008.3", None, sdist=True)]
    cmd = wheels.pip_command(group, False, FLAVOUR, PYPI, tmp_path, tmp_path)
    # Only the sdists from source: their build dependencies (Cython...) may be wheels.
    assert "--no-binary=salt,timelib" in cmd and "--only-binary=:all:" not in cmd
    assert "--require-hashes" not in cmd


def test_cached_wheels_are_found_by_name_version_and_digest(tmp_path):
    store = Store(tmp_path, offline=True)
    (tmp_path / "wheels").mkdir()
    good = tmp_path / "wheels/ks_a-1.0-py3-none-any.whl"
    good.write_bytes(b"wheel")
    (tmp_path / "wheels/ks_a-1.0.tar.gz").write_bytes(b"sdist")
    path, sha = wheels.fetch_wheel(
        Wheel("ks-a", "1.0", sha256_file(good)), FLAVOUR, PYPI, store, tmp_path
    )
    assert path == good and sha == sha256_file(good)
    with pytest.raises(DigestMismatchError):
        wheels.fetch_wheel(Wheel("ks-a", "1.0", "0" * 64), FLAVOUR, PYPI, store, tmp_path)
    with pytest.raises(MissingArtifactError, match="wheel ks-a==2.0"):
        wheels.fetch_wheel(Wheel("ks-a", "2.0", None), FLAVOUR, PYPI, store, tmp_path)
    sdist, _ = wheels.fetch_wheel(
        Wheel("ks-a", "1.0", None, sdist=True), FLAVOUR, PYPI, store, tmp_path
    )
    assert sdist.name == "ks_a-1.0.tar.gz"


def test_an_sdist_without_a_built_wheel_offline_is_missing(tmp_path):
    store = Store(tmp_path, offline=True)
    with pytest.raises(MissingArtifactError, match="no wheel built from this sdist"):
        wheels.build_sdist(Wheel("salt", "3008.3", "a" * 64, True), Path("x"), "a" * 64, FLAVOUR, PYPI,
                           store, tmp_path)  # fmt: skip
