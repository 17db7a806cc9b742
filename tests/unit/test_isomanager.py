"""kubesalt-iso (kubesalt.bootstrap.isomanager) and the register it shares with bootstrap.sh:
the current archive, the decisions of add and remove, their idempotence, the table.

Archives here are directories (nothing to mount); the signature check and the Salt run are
replaced (tests/integration/test_kubesalt_iso.py runs the real gpgv, mount and fstab)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from kubesalt.bootstrap import archive, cli, isomanager, mounts, saltout
from kubesalt.bootstrap.isomanager import IsoError
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.bootstrap.system import Log, System
from tests.unit.loader import load
from tests.unit.test_keepalived import render_sls

FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"


def make_tree(root: Path, version: str, content: str = "tree", kubernetes: str = "") -> Path:
    """An archive tree with every required part; `content` changes its SHA256SUMS."""
    for rel in archive.REQUIRED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == archive.WHEELS_DIR:
            path.mkdir(exist_ok=True)
        else:
            path.write_text(f"{rel}\n")
    product = f"NAME=kubesalt\nVERSION={version}\nFLAVOUR=lab\n"
    if kubernetes:
        product += f"KUBERNETES_VERSION={kubernetes}\n"
    (root / archive.PRODUCT).write_text(product)
    (root / archive.SUMS).write_text(f"{'0' * 64}  {content}\n")
    return root


def entry(root: Path, version: str) -> archive.Archive:
    return archive.Archive(str(root), str(root), "directory", "kubesalt", version, "lab")


class Served:
    """The Salt run of SERVE_STATES: counts its calls, reports `changed` changes."""

    def __init__(self, changed: int = 3):
        self.calls = 0
        self.changed = changed

    def __call__(self, ctx) -> saltout.StateSummary:
        self.calls += 1
        return saltout.StateSummary(total=40, changed=[f"state {i}" for i in range(self.changed)])


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A bootstrap node with archive 1.0.0 registered and current; verify is faked."""
    verified = []

    def verify(root, fingerprint=None):
        verified.append((root, fingerprint))
        return FINGERPRINT

    monkeypatch.setattr(archive, "verify", verify)
    register = tmp_path / "archives.yaml"
    first = make_tree(tmp_path / "kubesalt-1.0.0", "1.0.0")
    register.write_text(archive.register_text([entry(first, "1.0.0")]))
    log = Log(str(tmp_path / "kubesalt-iso.log"), verbose=False)
    ctx = cli.Context(
        args=argparse.Namespace(archive_fingerprint=FINGERPRINT), log=log, system=System(log)
    )
    served = Served()
    manager = isomanager.Manager(
        ctx, register=str(register), fstab=str(tmp_path / "fstab"), serve=served
    )
    yield argparse.Namespace(
        tmp=tmp_path, register=register, manager=manager, served=served, verified=verified
    )
    log.close()


# -- the register ----------------------------------------------------------------------


def test_the_register_records_the_current_archive(tmp_path):
    path = tmp_path / "archives.yaml"
    items = [entry(tmp_path / "a", "1.0.0"), entry(tmp_path / "b", "1.1.0")]
    path.write_text(archive.register_text(items, "1.1.0"))
    assert yaml.safe_load(path.read_text())["current"] == "1.1.0"
    assert archive.load_register(str(path)) == items
    assert archive.load_current(str(path)) == "1.1.0"


def test_without_current_the_first_archive_is_current(tmp_path):
    path = tmp_path / "archives.yaml"
    items = [entry(tmp_path / "a", "1.0.0"), entry(tmp_path / "b", "1.1.0")]
    assert yaml.safe_load(archive.register_text(items))["current"] == "1.0.0"
    # A register bootstrap.sh wrote before `current` was recorded: its first archive ran.
    data = yaml.safe_load(archive.register_text(items))
    del data["current"]
    path.write_text(yaml.safe_dump(data))
    assert archive.load_current(str(path)) == "1.0.0"
    assert archive.load_current(str(tmp_path / "none.yaml")) is None


def test_the_current_archive_must_be_registered(tmp_path):
    with pytest.raises(BootstrapError, match=r"'2.0.0' cannot be the current archive.*\(1.0.0\)"):
        archive.register_text([entry(tmp_path, "1.0.0")], "2.0.0")


def test_set_current_moves_the_cluster_to_a_registered_archive(tmp_path):
    path = tmp_path / "archives.yaml"
    items = [entry(tmp_path / "a", "1.0.0"), entry(tmp_path / "b", "1.1.0")]
    path.write_text(archive.register_text(items))
    writes = []

    def write(target, text):
        writes.append(target)
        changed = Path(target).read_text() != text
        Path(target).write_text(text)
        return changed

    assert archive.set_current("1.1.0", write, str(path)) is True
    assert archive.load_current(str(path)) == "1.1.0"
    assert archive.load_register(str(path)) == items
    assert archive.set_current("1.1.0", write, str(path)) is False
    with pytest.raises(BootstrapError, match="'3.0.0' cannot be the current archive"):
        archive.set_current("3.0.0", write, str(path))
    assert writes == [str(path), str(path)]


def test_fstab_without_drops_the_archive_line_only():
    line = "/i/k.iso /srv/kubesalt/k iso9660 loop,ro,nofail 0 0"
    base = "UUID=1 / ext4 defaults 0 1\n# /x /srv/kubesalt/k comment\n"
    assert archive.fstab_without(base + line + "\n", "/srv/kubesalt/k") == base
    assert archive.fstab_without(base, "/srv/kubesalt/k") is None


def test_stale_apt_files_are_those_of_unregistered_archives(tmp_path):
    kept = entry(tmp_path, "1.0.0")
    assert archive.apt_file_patterns() == (
        "/etc/apt/sources.list.d/kubesalt-*.sources",
        "/etc/apt/keyrings/kubesalt-*.gpg",
    )
    found = [
        "/etc/apt/sources.list.d/kubesalt-1.0.0.sources",
        "/etc/apt/keyrings/kubesalt-1.0.0.gpg",
        "/etc/apt/sources.list.d/kubesalt-0.9.0.sources",
        "/etc/apt/keyrings/kubesalt-0.9.0.gpg",
    ]
    assert archive.stale_apt_files([kept], found) == [
        "/etc/apt/keyrings/kubesalt-0.9.0.gpg",
        "/etc/apt/sources.list.d/kubesalt-0.9.0.sources",
    ]


# -- bootstrap.sh keeps what kubesalt-iso added ----------------------------------------


@pytest.fixture
def bootstrap(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "REGISTER", str(tmp_path / "archives.yaml"))
    monkeypatch.setattr(cli, "verify_archive", lambda ctx, root: None)
    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    ctx = cli.Context(args=argparse.Namespace(archive=None), log=log, system=System(log))
    yield ctx
    log.close()


def test_bootstrap_keeps_added_archives_and_the_recorded_current(tmp_path, bootstrap):
    first = make_tree(tmp_path / "kubesalt-1.0.0", "1.0.0")
    added = make_tree(tmp_path / "kubesalt-1.1.0", "1.1.0")
    bootstrap.archive_sources = [str(first)]
    cli.phase_archive(bootstrap)
    assert archive.load_current(archive.REGISTER) == "1.0.0"
    Path(archive.REGISTER).write_text(
        archive.register_text([entry(first, "1.0.0"), entry(added, "1.1.0")], "1.1.0")
    )
    result = cli.phase_archive(bootstrap)
    assert [a.version for a in archive.load_register(archive.REGISTER)] == ["1.0.0", "1.1.0"]
    assert bootstrap.current.version == "1.1.0"
    assert archive.load_current(archive.REGISTER) == "1.1.0"
    assert result.changed is False
    assert result.detail.endswith("; current 1.1.0")


def test_bootstrap_names_an_added_archive_that_is_gone(tmp_path, bootstrap):
    first = make_tree(tmp_path / "kubesalt-1.0.0", "1.0.0")
    gone = entry(tmp_path / "kubesalt-1.1.0", "1.1.0")
    Path(archive.REGISTER).write_text(archive.register_text([entry(first, "1.0.0"), gone]))
    bootstrap.archive_sources = [str(first)]
    with pytest.raises(BootstrapError) as failed:
        cli.phase_archive(bootstrap)
    assert str(failed.value).endswith(
        f"(archive 1.1.0 is in {archive.REGISTER}, added by kubesalt-iso: put {gone.source} "
        "back, or remove it with kubesalt-iso remove 1.1.0)"
    )


def test_bootstrap_with_archive_makes_it_current(tmp_path, bootstrap):
    first = make_tree(tmp_path / "kubesalt-1.0.0", "1.0.0")
    added = make_tree(tmp_path / "kubesalt-1.1.0", "1.1.0")
    Path(archive.REGISTER).write_text(
        archive.register_text([entry(first, "1.0.0"), entry(added, "1.1.0")], "1.1.0")
    )
    bootstrap.args.archive = str(first)
    bootstrap.archive_sources = [str(first)]
    cli.phase_archive(bootstrap)
    assert bootstrap.current.version == "1.0.0"
    assert archive.load_current(archive.REGISTER) == "1.0.0"


# -- add -------------------------------------------------------------------------------


def test_add_verifies_registers_and_serves_a_new_archive(node, capsys):
    new = make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")
    assert node.manager.add(str(new)) == isomanager.EXIT_OK
    assert node.verified == [(str(new), FINGERPRINT)]
    assert archive.load_register(str(node.register))[1] == entry(new, "1.1.0")
    assert archive.load_current(str(node.register)) == "1.0.0"
    assert node.served.calls == 1
    out = capsys.readouterr().out
    assert f"registered kubesalt 1.1.0 at {new} (kubesalt-1.1.0)" in out
    assert "40 states, 3 changed" in out
    assert "the current archive is still 1.0.0" in out
    assert not (node.tmp / "fstab").exists()  # a directory is not mounted


def test_adding_the_same_archive_again_changes_nothing_and_says_so(node, capsys):
    new = make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")
    node.manager.add(str(new))
    before = node.register.read_text()
    node.served.changed = 0
    capsys.readouterr()
    assert node.manager.add(str(new)) == isomanager.EXIT_OK
    assert node.register.read_text() == before
    out = capsys.readouterr().out
    assert f"kubesalt 1.1.0 is already registered (from {new}, same SHA256SUMS)" in out
    assert out.rstrip().endswith("kubesalt-iso: nothing changed")


def test_another_content_under_a_registered_version_is_refused_before_any_change(node):
    other = make_tree(node.tmp / "elsewhere", "1.0.0", content="other")
    before = node.register.read_text()
    with pytest.raises(IsoError) as refused:
        node.manager.add(str(other))
    assert str(refused.value) == (
        f"{other}: version 1.0.0 is already registered from {node.tmp / 'kubesalt-1.0.0'}, "
        "with another content (their SHA256SUMS differ); nothing was changed. Rebuild this "
        "archive with another version, or remove the registered one first (kubesalt-iso "
        "remove 1.0.0) if the cluster does not run it"
    )
    assert node.register.read_text() == before
    assert node.served.calls == 0


def test_a_registered_archive_that_cannot_be_read_is_named(node):
    sums = node.tmp / "kubesalt-1.0.0" / archive.SUMS
    sums.unlink()
    again = make_tree(node.tmp / "copy", "1.0.0")
    with pytest.raises(IsoError, match=r"archive 1.0.0 .* cannot be read at .*mount -a"):
        node.manager.add(str(again))


def test_add_needs_a_bootstrap_node(node):
    node.register.unlink()
    with pytest.raises(IsoError, match=r"archives.yaml lists no archive: .*run bootstrap.sh first"):
        node.manager.add(str(make_tree(node.tmp / "n", "1.1.0")))


def test_a_refused_iso_is_unmounted_again(node, monkeypatch):
    attached = mounts.Attached("/isos/k.iso", "/srv/kubesalt/k", "iso", mounted_now=True)
    unmounted = []
    monkeypatch.setattr(mounts, "attach", lambda system, path: attached)
    monkeypatch.setattr(mounts, "unmount", lambda system, root: unmounted.append(root))
    with pytest.raises(BootstrapError, match="cannot be read"):  # no product.txt there
        node.manager.add("/isos/k.iso")
    assert unmounted == ["/srv/kubesalt/k"]
    assert node.served.calls == 0


def test_an_iso_whose_mount_point_holds_another_registered_iso_is_refused(tmp_path):
    known = archive.Archive("/isos/a/k.iso", "/srv/kubesalt/k", "iso", "kubesalt", "1.0.0")
    other = mounts.Attached("/isos/b/k.iso", "/srv/kubesalt/k", "iso")
    with pytest.raises(IsoError, match=r"already holds archive 1.0.0 from /isos/a/k.iso"):
        isomanager.taken_mount_point([known], other)
    isomanager.taken_mount_point(
        [known], mounts.Attached("/isos/a/k.iso", "/srv/kubesalt/k", "iso")
    )


# -- remove ----------------------------------------------------------------------------


def test_remove_refuses_the_current_archive(node):
    with pytest.raises(IsoError) as refused:
        node.manager.remove("1.0.0")
    assert str(refused.value) == (
        "VERSION 1.0.0: this is the current archive, the one the cluster runs (saltenv "
        "kubesalt-1.0.0 of salt-master and the minions); move the cluster to another archive "
        "first (upgrade or downgrade), then remove this one"
    )
    assert node.served.calls == 0


def test_remove_refuses_an_unknown_version_and_lists_the_registered_ones(node):
    with pytest.raises(IsoError) as refused:
        node.manager.remove("2.0.0")
    assert str(refused.value) == (
        "VERSION 2.0.0: no archive of that version is registered (registered: 1.0.0); "
        "see kubesalt-iso list"
    )


def test_remove_refuses_a_version_that_is_not_one(node):
    with pytest.raises(BootstrapError, match=r"VERSION: VERSION 'x/../y' is not a kubesalt"):
        node.manager.remove("x/../y")


def test_remove_unregisters_stops_serving_and_says_images_stay(node, capsys):
    new = make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")
    node.manager.add(str(new))
    capsys.readouterr()
    assert node.manager.remove("1.1.0") == isomanager.EXIT_OK
    assert [a.version for a in archive.load_register(str(node.register))] == ["1.0.0"]
    assert archive.load_current(str(node.register)) == "1.0.0"
    assert node.served.calls == 2
    assert new.is_dir()  # a directory archive is left where it is
    out = capsys.readouterr().out
    assert "unregistered kubesalt 1.1.0 (kubesalt-1.1.0)" in out
    assert "removed 1.1.0; its images stay in the registry: the registry refuses deletes" in out


def test_removed_iso_loses_its_fstab_line_and_its_mount(node, monkeypatch):
    iso = archive.Archive("/isos/k.iso", "/srv/kubesalt/k", "iso", "kubesalt", "1.1.0")
    current = entry(node.tmp / "kubesalt-1.0.0", "1.0.0")
    node.register.write_text(archive.register_text([current, iso], "1.0.0"))
    fstab = node.tmp / "fstab"
    fstab.write_text(
        "UUID=1 / ext4 defaults 0 1\n/isos/k.iso /srv/kubesalt/k iso9660 loop,ro,nofail 0 0\n"
    )
    unmounted = []
    monkeypatch.setattr(mounts, "unmount", lambda system, root: unmounted.append(root) or True)
    node.manager.remove("1.1.0")
    assert fstab.read_text() == "UUID=1 / ext4 defaults 0 1\n"
    assert unmounted == ["/srv/kubesalt/k"]


# -- list ------------------------------------------------------------------------------


def test_list_shows_every_archive_and_marks_the_current_one(node, capsys):
    make_tree(node.tmp / "kubesalt-1.0.0", "1.0.0", kubernetes="1.33.4")
    new = make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")
    node.manager.add(str(new))
    capsys.readouterr()
    assert node.manager.list() == isomanager.EXIT_OK
    first = node.tmp / "kubesalt-1.0.0"
    assert capsys.readouterr().out.splitlines() == [
        "VERSION  NAME      FLAVOUR  KIND       KUBERNETES  CURRENT  SOURCE",
        f"1.0.0    kubesalt  lab      directory  1.33.4      *        {first}",
        f"1.1.0    kubesalt  lab      directory  -                    {new}",
    ]


def test_the_kubernetes_version_of_an_unreadable_archive_is_a_question_mark(tmp_path):
    assert isomanager.kubernetes_version(entry(tmp_path / "gone", "1.0.0")) == "?"


# -- command line ----------------------------------------------------------------------


def test_main_refuses_a_path_that_does_not_exist_before_anything(tmp_path, capsys):
    code = isomanager.main(["--log-file", str(tmp_path / "log"), "add", str(tmp_path / "no.iso")])
    assert code == isomanager.EXIT_FAILED
    assert (
        f"kubesalt-iso: error: archive {tmp_path / 'no.iso'} does not exist"
        in capsys.readouterr().out
    )


def test_main_refuses_a_bad_fingerprint(tmp_path, capsys):
    args = [
        "--log-file",
        str(tmp_path / "log"),
        "add",
        str(tmp_path),
        "--archive-fingerprint",
        "12",
    ]
    assert isomanager.main(args) == isomanager.EXIT_FAILED
    assert "archive key fingerprint '12' is not 40 hex digits" in capsys.readouterr().out


def test_main_needs_root(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(isomanager.os, "geteuid", lambda: 1000)
    assert isomanager.main(["--log-file", str(tmp_path / "log"), "list"]) == isomanager.EXIT_FAILED
    assert "kubesalt-iso runs as uid 1000; run it as root" in capsys.readouterr().out


def test_main_usage_errors_exit_2(tmp_path):
    with pytest.raises(SystemExit) as usage:
        isomanager.main(["--log-file", str(tmp_path / "log"), "mount"])
    assert usage.value.code == isomanager.EXIT_USAGE


def test_add_and_remove_hold_the_orchestration_lock(node, monkeypatch):
    from kubesalt import lock

    monkeypatch.setattr(lock, "LOCK_FILE", str(node.tmp / "orchestrate.lock"))
    node.manager.add(str(make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")))
    held = []
    monkeypatch.setattr(node.manager, "remove", lambda version: held.append(lock._HELD.copy()) or 0)
    args = argparse.Namespace(command="remove", version="1.1.0")
    assert isomanager.run(args, node.manager) == 0
    assert list(held[0]) == [str(node.tmp / "orchestrate.lock")]
    assert lock._HELD == {}


def test_the_repo_state_is_given_the_apt_files_of_removed_archives(tmp_path, monkeypatch):
    kubesalt_bootstrap = load("_modules", "kubesalt_bootstrap")
    monkeypatch.setattr(archive, "APT_SOURCES_DIR", str(tmp_path / "sources.list.d"))
    monkeypatch.setattr(archive, "APT_KEYRINGS_DIR", str(tmp_path / "keyrings"))
    monkeypatch.setattr(archive, "load_register", lambda: [entry(tmp_path, "1.0.0")])
    for version in ("1.0.0", "0.9.0"):
        for directory, suffix in (("sources.list.d", "sources"), ("keyrings", "gpg")):
            (tmp_path / directory).mkdir(exist_ok=True)
            (tmp_path / directory / f"kubesalt-{version}.{suffix}").write_text("x")
    (tmp_path / "sources.list.d" / "debian.sources").write_text("x")
    assert kubesalt_bootstrap.stale_apt_files() == [
        str(tmp_path / "keyrings" / "kubesalt-0.9.0.gpg"),
        str(tmp_path / "sources.list.d" / "kubesalt-0.9.0.sources"),
    ]


def test_a_failed_serve_registers_the_archive_again_for_another_remove(node):
    new = make_tree(node.tmp / "kubesalt-1.1.0", "1.1.0")
    node.manager.add(str(new))
    before = node.register.read_text()

    def fail(ctx):
        raise BootstrapError("salt-call --local state.apply kubesalt.repo,... failed (exit 2)")

    node.manager.serve = fail
    with pytest.raises(IsoError) as failed:
        node.manager.remove("1.1.0")
    assert str(failed.value).endswith(
        "\n1.1.0 is registered again; fix the cause, then run kubesalt-iso remove 1.1.0 again"
    )
    assert node.register.read_text() == before


def test_a_log_file_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    log = tmp_path / "file" / "kubesalt-iso.log"  # under a file: never a directory
    assert isomanager.main(["--log-file", str(log), "list"]) == isomanager.EXIT_USAGE
    assert capsys.readouterr().err == (
        f"kubesalt-iso: --log-file {log}: cannot be written (File exists)\n"
    )


def test_the_services_are_configured_for_the_current_archive(tmp_path, monkeypatch):
    """salt-master's module_dirs and the minion's saltenv follow the run's saltenv, else
    the current archive of the register (not its first)."""
    kubesalt_bootstrap = load("_modules", "kubesalt_bootstrap")
    first, current = entry(tmp_path / "a", "1.0.0"), entry(tmp_path / "b", "1.1.0")
    monkeypatch.setattr(archive, "load_register", lambda: [first, current])
    monkeypatch.setattr(archive, "load_current", lambda: "1.1.0")
    kubesalt_bootstrap.__opts__ = {}
    assert kubesalt_bootstrap._current() == current
    kubesalt_bootstrap.__opts__ = {"saltenv": "kubesalt-1.0.0"}
    assert kubesalt_bootstrap._current() == first


def test_refusals_come_before_the_lock(node, monkeypatch):
    from kubesalt import lock

    monkeypatch.setattr(lock, "LOCK_FILE", str(node.tmp / "run" / "orchestrate.lock"))
    with pytest.raises(IsoError, match="VERSION 1.0.0: this is the current archive"):
        isomanager.run(argparse.Namespace(command="remove", version="1.0.0"), node.manager)
    node.register.unlink()
    with pytest.raises(IsoError, match="lists no archive"):
        isomanager.run(argparse.Namespace(command="add", path=str(node.tmp)), node.manager)
    assert not (node.tmp / "run").exists()


def test_the_repo_state_declares_registered_sources_and_removes_the_others(tmp_path):
    registered = entry(tmp_path, "1.0.0")
    source = {
        "saltenv": registered.saltenv,
        "keyring_source": registered.path(archive.KEYRING),
        "keyring": archive.apt_keyring_path(registered),
        "path": archive.apt_sources_path(registered),
        "contents": archive.apt_sources(registered),
        "update": " ".join(archive.apt_update_command(registered)),
    }
    stale = [
        "/etc/apt/keyrings/kubesalt-0.9.0.gpg",
        "/etc/apt/sources.list.d/kubesalt-0.9.0.sources",
    ]
    high = render_sls(
        "kubesalt.repo.configured",
        {},
        {
            "kubesalt_bootstrap.apt_sources": lambda: [source],
            "kubesalt_bootstrap.stale_apt_files": lambda: stale,
        },
    )
    assert high["Declare the kubesalt-1.0.0 apt repository"]["file.managed"][0] == {
        "name": "/etc/apt/sources.list.d/kubesalt-1.0.0.sources"
    }
    # The refresh runs the archive's own command (not Jinja's dict.update method, which
    # `source.update` gave).
    refresh = high["Refresh the index of the kubesalt-1.0.0 apt repository"]["cmd.run"]
    assert refresh[0] == {"name": source["update"]}
    assert source["update"].startswith("apt-get update")
    removed = {sid: state["file.absent"] for sid, state in high.items() if "file.absent" in state}
    assert removed == {
        f"Remove {path}, of an archive no longer registered": [{"name": path}] for path in stale
    }
