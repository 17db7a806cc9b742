"""Unit tests of kubesalt.bootstrap's pure parts: phases, preflight checks, archive
layout, service configuration, Salt output reading."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from kubesalt import config as kconfig
from kubesalt import network
from kubesalt.bootstrap import archive, cli, phases, preflight, registry, saltout, services
from kubesalt.bootstrap.phases import BootstrapError, Phase, PhaseError, PhaseResult, UsageError
from kubesalt.bootstrap.system import Log

ROOT = Path(__file__).resolve().parents[2]

LAB_CONFIG = "scripts/lab/bootstrap.yaml"


@pytest.fixture
def cfg():
    return kconfig.load_file(LAB_CONFIG)


def _archive(root="/srv/kubesalt/kubesalt-0.1.0", version="0.1.0"):
    return archive.Archive(
        source=root, root=root, kind="directory", name="kubesalt", version=version
    )


# -- phases ----------------------------------------------------------------------------


def _phase(name, changed=False, fail=None, calls=None):
    def run(_ctx):
        if calls is not None:
            calls.append(name)
        if fail:
            raise fail
        return PhaseResult(changed, f"{name} detail")

    return Phase(name, f"the {name} step", run)


def test_parse_skip_accepts_declared_names_and_blanks():
    declared = [_phase("preflight"), _phase("archive")]
    assert phases.parse_skip("archive, preflight,", declared) == {"archive", "preflight"}
    assert phases.parse_skip(None, declared) == set()


def test_parse_skip_lists_valid_phases_for_an_unknown_name():
    declared = [_phase("preflight"), _phase("archive")]
    with pytest.raises(UsageError) as err:
        phases.parse_skip("archive,prefligth", declared)
    assert "'prefligth'" in str(err.value)
    assert "valid phases, in order: preflight, archive" in str(err.value)


def test_run_phases_times_each_phase_skips_and_reports_changes():
    calls, said = [], []
    ticks = iter([0.0, 1.5, 10.0, 12.25])
    report = phases.run_phases(
        [
            _phase("a", calls=calls),
            _phase("b", calls=calls),
            _phase("c", changed=True, calls=calls),
        ],
        context=None,
        skip={"b"},
        announce=said.append,
        clock=lambda: next(ticks),
    )
    assert calls == ["a", "c"]
    assert [(o.name, o.seconds, o.skipped) for o in report.outcomes] == [
        ("a", 1.5, False),
        ("b", 0.0, True),
        ("c", 2.25, False),
    ]
    assert report.changed is True
    assert said[0] == "[1/3] a: the a step ..."
    assert said[1] == "      a done in 1.5s (no changes; a detail)"
    assert said[2] == "[2/3] b: the b step ... skipped (--skip-phases)"
    assert said[4] == "      c done in 2.2s (changed; c detail)"


def test_run_phases_names_the_failing_phase_and_stops():
    calls = []
    declared = [
        _phase("a", calls=calls),
        _phase("b", fail=BootstrapError("disk full"), calls=calls),
        _phase("c", calls=calls),
    ]
    with pytest.raises(PhaseError) as err:
        phases.run_phases(declared, None, announce=lambda _: None)
    assert str(err.value) == "error in phase b: disk full"
    assert err.value.phase == "b"
    assert calls == ["a", "b"]


def test_report_without_changes_says_so():
    report = phases.run_phases([_phase("a"), _phase("b")], None, announce=lambda _: None)
    assert report.changed is False


# -- preflight -------------------------------------------------------------------------


def test_check_root():
    assert preflight.check_root(0) == []
    assert "run it as root" in preflight.check_root(1000)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', None),
        ('ID=debian\nVERSION_ID="11"\nPRETTY_NAME="Debian GNU/Linux 11"', "must run Debian 12"),
        (
            'ID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"',
            "RPM family cannot be a bootstrap node yet",
        ),
        ('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"', "is not supported"),
    ],
)
def test_check_os(text, expected):
    problems = preflight.check_os(preflight.parse_os_release(text))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


def test_check_addresses_chooses_from_the_cidrs_and_never_the_vip(cfg):
    have = [
        network.HostAddress("eth0", "192.0.2.2", 24),
        network.HostAddress("host0", "198.51.100.100", 24),
        network.HostAddress("host0", "198.51.100.10", 24),
    ]
    problems, chosen = preflight.check_addresses(cfg, have)
    assert problems == []
    assert chosen == {"controlPlane": "198.51.100.10", "workloadPlane": "198.51.100.10"}


def test_check_addresses_names_the_key_when_no_address_matches(cfg):
    problems, chosen = preflight.check_addresses(
        cfg, [network.HostAddress("eth0", "192.0.2.2", 24)]
    )
    assert chosen == {}
    assert len(problems) == 2
    assert "networks.controlPlane.cidr [198.51.100.0/24]" in problems[0]
    assert "eth0 192.0.2.2/24" in problems[0]


SS_TCP = """\
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=90,fd=3))
LISTEN 0      511    198.51.100.10:8443      0.0.0.0:*    users:(("nginx",pid=300,fd=6),("nginx",pid=301,fd=6))
LISTEN 0      4096       127.0.0.1:5000      0.0.0.0:*    users:(("docker-registry",pid=400,fd=3))
LISTEN 0      1000   198.51.100.10:4506      0.0.0.0:*    users:(("salt-master",pid=500,fd=20))
LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=90,fd=4))
"""


def test_parse_ss():
    found = preflight.parse_ss(SS_TCP, "tcp")
    assert found[1] == preflight.Listener("tcp", "198.51.100.10", 8443, (300, 301))
    assert found[4] == preflight.Listener("tcp", "::", 22, (90,))
    assert len(found) == 5


def test_check_ports_accepts_ports_held_by_kubesalt_units(cfg):
    listeners = preflight.parse_ss(SS_TCP, "tcp")
    units = {
        90: "ssh.service",
        300: "nginx.service",
        301: "nginx.service",
        400: "docker-registry.service",
        500: "salt-master.service",
    }
    assert preflight.check_ports(cfg, listeners, units) == []


def test_check_ports_names_the_port_entry_and_the_holder(cfg):
    listeners = preflight.parse_ss(SS_TCP, "tcp")
    units = {300: "apache2.service", 301: "apache2.service", 400: None, 500: "salt-master.service"}
    problems = preflight.check_ports(cfg, listeners, units)
    assert len(problems) == 2
    assert problems[0].startswith("port tcp/8443 (repository, for nginx")
    assert "by apache2.service (pids [300, 301])" in problems[0]
    assert problems[1].startswith("port tcp/5000 (registry") and "an unknown process" in problems[1]


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        (
            "1:name=systemd:/system.slice/nginx.service\n0::/system.slice/nginx.service\n",
            "nginx.service",
        ),
        ("0::/system.slice/salt-master.service\n", "salt-master.service"),
        ("0::/user.slice/user-0.slice/session-1.scope\n", "session-1.scope"),
        ("9:name=systemd:/../../..\n0::/../../..\n", None),
    ],
)
def test_unit_of_cgroup(text, unit):
    assert preflight.unit_of_cgroup(text) == unit


def test_check_disk():
    gib = 1 << 30
    assert preflight.check_disk({"/opt": 5 * gib, "/var": 5 * gib, "/etc": gib}) == []
    problems = preflight.check_disk({"/opt": gib // 2, "/var": 5 * gib, "/etc": gib})
    assert problems == [
        "/opt has 512 MiB free, bootstrap needs 1024 MiB; free space on the filesystem holding /opt"
    ]


# -- archive ---------------------------------------------------------------------------


def test_parse_product_requires_name_and_version():
    assert (
        archive.parse_product("NAME=kubesalt\nVERSION=0.1.0\nFLAVOUR=lab\n", "p")["FLAVOUR"]
        == "lab"
    )
    with pytest.raises(BootstrapError, match="p: VERSION missing"):
        archive.parse_product("NAME=kubesalt\n", "p")


def test_mount_point_of_an_iso():
    assert archive.mount_point("/srv/isos/kubesalt-0.1.0.iso") == "/srv/kubesalt/kubesalt-0.1.0"
    assert archive.mount_point("/data/KUBESALT.ISO") == "/srv/kubesalt/KUBESALT"


def test_describe_checks_every_required_part(tmp_path):
    (tmp_path / "product.txt").write_text("NAME=kubesalt\nVERSION=0.2.0\n")
    with pytest.raises(BootstrapError) as err:
        archive.describe(str(tmp_path), str(tmp_path), "directory")
    for part in (
        "salt/top.sls",
        "pillar/top.sls",
        "wheels",
        "deb/dists/kubesalt/InRelease",
        archive.KEYRING,
    ):
        assert part in str(err.value)
    for rel in archive.REQUIRED:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel != archive.PRODUCT:
            path.mkdir() if rel == "wheels" else path.write_text("x")
    found = archive.describe("/x.iso", str(tmp_path), "iso")
    assert (found.version, found.saltenv, found.kind) == ("0.2.0", "kubesalt-0.2.0", "iso")


def test_kind_of(tmp_path):
    iso = tmp_path / "k.iso"
    iso.write_bytes(b"")
    assert archive.kind_of(str(iso)) == "iso"
    assert archive.kind_of(str(tmp_path)) == "directory"
    with pytest.raises(BootstrapError, match="does not exist"):
        archive.kind_of(str(tmp_path / "missing.iso"))


def test_fstab_lines():
    assert (
        archive.fstab_line("/i/k.iso", "/srv/kubesalt/k", False)
        == "/i/k.iso /srv/kubesalt/k iso9660 loop,ro,nofail 0 0"
    )
    assert (
        archive.fstab_line("/i/k.iso", "/srv/kubesalt/k", True)
        == "fuseiso#/i/k.iso /srv/kubesalt/k fuse ro,nofail,allow_other 0 0"
    )


def test_fstab_with_adds_replaces_and_keeps():
    line = "/i/k.iso /srv/kubesalt/k iso9660 loop,ro,nofail 0 0"
    base = "UUID=1 / ext4 defaults 0 1\n"
    added = archive.fstab_with(base, line, "/srv/kubesalt/k")
    assert added == base + line + "\n"
    assert archive.fstab_with(added, line, "/srv/kubesalt/k") is None
    old = base + "/old.iso /srv/kubesalt/k iso9660 loop,ro 0 0\n"
    assert archive.fstab_with(old, line, "/srv/kubesalt/k") == base + line + "\n"


def test_register_round_trip(tmp_path):
    path = tmp_path / "archives.yaml"
    items = [_archive(), _archive("/srv/kubesalt/kubesalt-0.2.0", "0.2.0")]
    path.write_text(archive.register_text(items))
    assert archive.load_register(str(path)) == items
    assert yaml.safe_load(path.read_text())["archives"][1]["saltenv"] == "kubesalt-0.2.0"
    assert archive.load_register(str(tmp_path / "none.yaml")) == []


def test_apt_source_and_update_command():
    item = _archive()
    assert archive.apt_sources(item).splitlines()[1:] == [
        "Types: deb",
        "URIs: file:///srv/kubesalt/kubesalt-0.1.0/deb",
        "Suites: kubesalt",
        "Components: main",
        "Signed-By: /etc/apt/keyrings/kubesalt-0.1.0.gpg",
    ]
    assert "URIs: https://198.51.100.10:8443/kubesalt-0.1.0/deb" in archive.apt_sources(
        item, "https://198.51.100.10:8443/kubesalt-0.1.0/deb"
    )
    assert archive.apt_update_command(item) == [
        "apt-get", "update", "-q",
        "-o", "Dir::Etc::sourcelist=/etc/apt/sources.list.d/kubesalt-0.1.0.sources",
        "-o", "Dir::Etc::sourceparts=-",
        "-o", "APT::Get::List-Cleanup=0",
    ]  # fmt: skip


# -- services --------------------------------------------------------------------------


def test_minion_config_serves_local_mode_and_the_master():
    current, other = _archive(), _archive("/srv/kubesalt/kubesalt-0.2.0", "0.2.0")
    text = services.minion_config("bootstrap", "198.51.100.10", [current, other], current)
    assert text.startswith("# Managed by kubesalt")
    data = yaml.safe_load(text)
    assert data["id"] == "bootstrap"
    assert data["master"] == "198.51.100.10"
    assert data["saltenv"] == data["pillarenv"] == "kubesalt-0.1.0"
    assert data["file_roots"] == {
        "kubesalt-0.1.0": ["/srv/kubesalt/kubesalt-0.1.0/salt"],
        "kubesalt-0.2.0": ["/srv/kubesalt/kubesalt-0.2.0/salt"],
    }
    assert data["pillar_roots"]["kubesalt-0.2.0"] == ["/srv/kubesalt/kubesalt-0.2.0/pillar"]
    assert data["module_dirs"] == ["/srv/kubesalt/kubesalt-0.1.0/salt"]
    # The orchestrations sync the modules; a highstate does not (test_orchestrate_tables).
    assert data["autoload_dynamic_modules"] is False
    assert data["ext_pillar"] == [
        {
            "kubesalt": {
                "config": "/etc/kubesalt/bootstrap.yaml",
                "inventory": "/etc/kubesalt/nodes",
            }
        },
        {"kubesalt_pki": {}},
        {"kubesalt_packages": {}},
    ]


def test_master_config_binds_the_ip_refuses_auto_accept_and_limits_peer():
    data = yaml.safe_load(
        services.master_config("198.51.100.10", "bootstrap", [_archive()], _archive())
    )
    assert data["interface"] == "198.51.100.10"
    assert data["auto_accept"] is False
    assert data["peer"] == {
        ".*": ["x509.sign_remote_certificate", "kubesalt_kubeadm.service_account_key"]
    }
    assert data["peer_run"] == {"bootstrap": ["match.compound_matches"]}
    assert data["file_roots"] == {"kubesalt-0.1.0": ["/srv/kubesalt/kubesalt-0.1.0/salt"]}


def test_registry_config_is_loopback_only():
    data = yaml.safe_load(services.registry_config())
    assert data["http"]["addr"] == "127.0.0.1:5000"
    assert data["storage"]["delete"] == {"enabled": False}


def test_nginx_config_listens_on_the_control_plane_ip_only():
    text = services.nginx_config("198.51.100.10", [_archive()])
    assert "    listen 198.51.100.10:8443 ssl;" in text.splitlines()
    assert sum(1 for line in text.splitlines() if line.strip().startswith("listen")) == 1
    assert "    location /kubesalt-0.1.0/ {\n        alias /srv/kubesalt/kubesalt-0.1.0/;" in text
    assert "proxy_pass http://127.0.0.1:5000;" in text
    assert f"ssl_certificate_key {services.REPOSITORY_KEY};" in text


def test_nginx_serves_the_salt_virtualenv_archive_read_only_beside_each_archive():
    text = services.nginx_config("198.51.100.10", [_archive()], salt_venv_dir="/var/x")
    start = text.index("    location = /kubesalt-0.1.0/salt-venv.tar.gz {")
    block = text[start : text.index("    }\n", start)]
    assert "        alias /var/x/kubesalt-0.1.0.tar.gz;" in block.splitlines()
    assert "limit_except GET HEAD {\n            deny all;" in block
    assert "autoindex" not in block
    default = services.nginx_config("198.51.100.10", [_archive()])
    assert "alias /var/lib/kubesalt/salt-venv/kubesalt-0.1.0.tar.gz;" in default


def test_systemd_unit_runs_from_the_virtualenv():
    unit = services.systemd_unit("salt-minion", "The Salt Minion", "process")
    assert "ExecStart=/opt/kubesalt/salt/bin/salt-minion\n" in unit
    assert "KillMode=process\n" in unit
    assert "LimitNOFILE=8192\n" in unit


# -- Salt output -----------------------------------------------------------------------


def _state(sid, result=True, changes=None, comment="ok", run=0, fun="file_|-"):
    key = f"{fun}{sid}_|-/x_|-managed"
    return key, {
        "__id__": sid,
        "result": result,
        "changes": changes or {},
        "comment": comment,
        "__run_num__": run,
    }


def test_summarize_salt_call_output():
    states = dict(
        [
            _state("A", run=1, changes={"diff": "secret=x"}),
            _state("B", run=0),
            _state("C", False, comment="boom\nline2", run=2),
        ]
    )
    summary = saltout.summarize({"local": states})
    assert summary.total == 3
    assert summary.changed == ["A"]
    assert summary.failed == [("C", "boom\nline2")]
    assert summary.lines == ["ok: B", "ok: A (changed: diff)", "FAILED: C"]
    assert all("secret" not in line for line in summary.lines)


def test_summarize_orchestrate_output_walks_nested_state_runs():
    nested = dict([_state("Write config", changes={"diff": "..."}), _state("Run nginx")])
    orchestrate = {
        "outputter": "highstate",
        "data": {
            "bootstrap_master": dict(
                [
                    _state("Accept the key", fun="kubesalt_salt_key_|-"),
                    _state(
                        "Apply the role",
                        fun="salt_|-",
                        changes={"ret": {"bootstrap": nested}, "out": "highstate"},
                    ),
                ]
            )
        },
    }
    summary = saltout.summarize(orchestrate)
    assert summary.changed == ["Apply the role [bootstrap] / Write config"]
    assert summary.total == 4


def test_summarize_render_errors():
    summary = saltout.summarize({"local": ["Rendering SLS 'x' failed: bad"]})
    assert summary.errors == ["Rendering SLS 'x' failed: bad"]
    assert summary.total == 0


# Salt's comment when a state raises (salt/state.py: "An exception occurred in this state: "
# followed by traceback.format_exc()).
TRACEBACK_COMMENT = (
    "An exception occurred in this state: Traceback (most recent call last):\n"
    '  File "/opt/kubesalt/venv/lib/python3.11/site-packages/salt/state.py", line 2216, in call\n'
    "    ret = instance.states[cdata['full']](*cdata['args'], **cdata['kwargs'])\n"
    "          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    + "".join(
        f'  File "/var/cache/salt/minion/extmods/states/kubesalt_pki.py", line {n}, in f{n}\n'
        f"    step{n}()\n"
        for n in range(40)
    )
    + "ValueError: bad key\n"
)


def test_short_comment_of_a_traceback_is_the_exception():
    short = saltout.short_comment(TRACEBACK_COMMENT)
    assert short == "An exception occurred in this state: ValueError: bad key"


def test_short_comment_keeps_a_multi_line_exception_message_with_its_type():
    comment = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    raise CommandExecutionError(msg)\n"
        "salt.exceptions.CommandExecutionError: etcdctl failed:\n"
        "  context deadline exceeded\n"
    )
    assert saltout.short_comment(comment) == (
        "salt.exceptions.CommandExecutionError: etcdctl failed: | context deadline exceeded"
    )


def test_short_comment_of_chained_exceptions_is_the_last_one():
    comment = (
        "An exception occurred in this state: Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "    open(path)\n"
        "FileNotFoundError: [Errno 2] No such file or directory: '/etc/kubesalt/pki/ca.key'\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "b.py", line 9, in g\n'
        "    raise KubesaltError(msg)\n"
        "kubesalt.errors.KubesaltError: the etcd-ca key is missing\n"
    )
    assert saltout.short_comment(comment) == (
        "An exception occurred in this state: "
        "kubesalt.errors.KubesaltError: the etcd-ca key is missing"
    )


def test_short_comment_never_cuts_the_exception_for_the_text_before_it():
    comment = "x" * 390 + " Traceback (most recent call last):\n  File 'a'\nKeyError: 'ca'"
    assert saltout.short_comment(comment) == "KeyError: 'ca'"


def test_short_comment_joins_the_first_lines_of_other_multi_line_comments():
    comment = "The following packages failed:\n\n  etcd-server\n" + "".join(
        f"  line {n}\n" for n in range(20)
    )
    assert saltout.short_comment(comment) == (
        "The following packages failed: | etcd-server | line 0 | line 1 | line 2 | line 3"
        " | line 4 | line 5"
    )


def test_short_comment_leaves_a_one_liner_as_it_is():
    assert saltout.short_comment("  File /etc/kubesalt/x is in the correct state  ") == (
        "File /etc/kubesalt/x is in the correct state"
    )
    assert saltout.short_comment(None) == ""
    assert saltout.short_comment(["Package a is installed", "Package b is installed"]) == (
        "Package a is installed | Package b is installed"
    )


def test_short_comment_cuts_a_very_long_line():
    short = saltout.short_comment("y" * 5000, limit=100)
    assert short == "y" * 97 + "..."
    assert len(saltout.short_comment("y" * 5000)) == saltout.COMMENT_LIMIT


def _salt_json_failure(tmp_path, states: list | str) -> tuple[str, str]:
    """Run cli.salt_json on a failed salt-call's output (the JSON of `states`, or a text):
    (console message, log text)."""
    output = states if isinstance(states, str) else json.dumps({"local": dict(states)})

    class System:
        def run(self, cmd, what, check, quiet_output):
            return subprocess.CompletedProcess(cmd, 2, stdout=output, stderr="")

    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    ctx = cli.Context(args=argparse.Namespace(), log=log, system=System())
    with pytest.raises(BootstrapError) as raised:
        cli.salt_json(ctx, ["salt-call"], "salt-call --local state.apply kubesalt.pki")
    log.close()
    return str(raised.value), (tmp_path / "bootstrap.log").read_text()


def test_salt_json_prints_the_exception_and_logs_the_whole_traceback(tmp_path):
    message, logged = _salt_json_failure(
        tmp_path,
        [
            _state("Create the etcd-ca key", False, comment=TRACEBACK_COMMENT),
            _state("Write the etcd-ca cert", False, comment="One or more requisite failed", run=1),
        ],
    )
    assert message.splitlines()[1:3] == [
        "  state 'Create the etcd-ca key': An exception occurred in this state: ValueError: bad key",
        "  state 'Write the etcd-ca cert': One or more requisite failed",
    ]
    assert "Traceback" not in message
    assert message.endswith(f"(details in the log: {tmp_path / 'bootstrap.log'})")
    assert 'kubesalt_pki.py", line 39, in f39' in logged
    assert "ValueError: bad key" in logged


def test_salt_json_lists_twenty_failures_and_counts_the_others(tmp_path):
    failed = [_state(f"State {n}", False, comment=f"failed {n}", run=n) for n in range(25)]
    message, logged = _salt_json_failure(tmp_path, failed)
    lines = message.splitlines()
    assert lines[0].endswith("25 state(s) failed:")
    assert lines[1:21] == [f"  state 'State {n}': failed {n}" for n in range(20)]
    assert lines[21] == "  ... and 5 more (see the log)"
    assert "state 'State 24' failed:" in logged


def test_salt_json_keeps_only_the_first_lines_of_an_output_that_is_not_json(tmp_path):
    output = "[WARNING ] a warning\n" + "".join(f"line {n}\n" for n in range(30)) + "secret=x\n"
    message, logged = _salt_json_failure(tmp_path, output)
    assert message.splitlines()[1] == (
        "  [WARNING ] a warning | line 0 | line 1 | line 2 | line 3 | line 4 | line 5 | line 6"
    )
    assert "secret" not in logged


# -- registry names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("registry.k8s.io/pause:3.10", ("registry.k8s.io/pause", "3.10")),
        ("lab.kubesalt.invalid/base:1", ("lab.kubesalt.invalid/base", "1")),
        ("docker.io/library/busybox:1.36", ("docker.io/library/busybox", "1.36")),
    ],
)
def test_split_ref_keeps_the_upstream_host(ref, expected):
    assert registry.split_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("pause:3.10", "not canonical"),
        ("registry.k8s.io/pause", "has no tag"),
        ("reg.io:5000/p:1", "with a port"),
    ],
)
def test_split_ref_refuses(ref, problem):
    with pytest.raises(registry.RegistryError, match=problem):
        registry.split_ref(ref)


def test_the_addons_phase_runs_the_addons_orchestration_last_and_reports_its_changes(tmp_path):
    assert [phase.name for phase in cli.PHASES][-2:] == ["orchestrate", "addons"]
    ran = []
    orchestrate = {"bootstrap_master": dict([_state("Run the addons orchestration",
                                                    changes={"addons": {}})])}  # fmt: skip

    class System:
        def run(self, cmd, what, check, quiet_output):
            ran.append(cmd)
            return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps(orchestrate), stderr="")

    log = Log(str(tmp_path / "bootstrap.log"), verbose=False)
    ctx = cli.Context(args=argparse.Namespace(), log=log, system=System())
    ctx.current = types.SimpleNamespace(saltenv="kubesalt-0.1.0")
    result = cli.phase_addons(ctx)
    log.close()
    assert ran == [[f"{cli.services.VENV}/bin/salt-run", "--out=json", "--log-level=quiet",
                    "state.orchestrate", "kubesalt.orchestrate.addons",
                    "saltenv=kubesalt-0.1.0"]]  # fmt: skip
    assert (result.changed, result.detail) == (True, "1 states, 1 changed")


# bootstrap.sh's python3 has the standard library and the archive's two library wheels
# (kubesalt.bootstrap.archive: PyYAML, netaddr) until phase salt-install: what its phases
# import, --restore included, must need nothing else.
IMPORT_GUARD = """
import importlib.abc, sys
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("yaml", "_yaml", "netaddr", "kubesalt"):
            return None
        raise ImportError("bootstrap.sh's python3 has no " + name)
sys.meta_path.insert(0, Guard())
import kubesalt.bootstrap.cli, kubesalt.backup, kubesalt.backup_etcd
"""


def test_bootstrap_sh_imports_only_the_archives_libraries():
    result = subprocess.run([sys.executable, "-c", IMPORT_GUARD], capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT / "src")}, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
