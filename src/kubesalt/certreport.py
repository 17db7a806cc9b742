"""The certificate expiry report (`salt-run kubesalt_certs.expiry`, docs/pki.md#the-expiry-report).

- `read_node(layout)`: on a node, every certificate file under /etc/kubernetes/pki and the
  client certificate embedded in each kubeconfig of /etc/kubernetes: dates, serial,
  issuer, whether it is a CA. No key is read.
- `build(answers, cfg, now, last_run)`: on the master, one report for the cluster:
  leaves (due or not, from pki.renewBeforeDays), CAs (a warning inside their window), the
  nodes that did not answer, the last scheduled renewal.
- `table(report)`: the report as `kubeadm certs check-expiration` prints it.
- The scheduled renewal's record (`LAST_RUN_FILE`) and `orchestrate_outcome`, which reads
  what a renew_certificates run did from the orchestrate runner's return.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubesalt import renewal
from kubesalt.columns import aligned
from kubesalt.errors import KubesaltError

LAST_RUN_FILE = "/var/lib/kubesalt/renewal/last-run.json"
SCHEDULE_NAME = "kubesalt-renew-certificates"
CLIENT_DATA = "client-certificate-data"
EXPIRES_FORMAT = "%b %d, %Y %H:%M UTC"  # kubeadm's
# The certificate state IDs of kubesalt.pki: "Obtain the <kind> certificate from the CA minion".
OBTAIN_ID = re.compile(r"^Obtain the (?P<kind>\S+) certificate from the CA minion$")


class ReportError(KubesaltError):
    """A certificate or the renewal record cannot be read; the message names the file."""


# -- on a node ---------------------------------------------------------------------------
def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def describe(cert: x509.Certificate, name: str, path: str) -> dict:
    """One certificate as the report needs it (no key material)."""
    return {
        "certificate": name,
        "path": path,
        "serial": format(cert.serial_number, "x"),
        "subject": _common_name(cert.subject),
        "issuer": _common_name(cert.issuer),
        "not_before": renewal.timestamp(cert.not_valid_before_utc),
        "not_after": renewal.timestamp(cert.not_valid_after_utc),
        "ca": _is_ca(cert),
    }


def _unreadable(name: str, path: str, why: str) -> dict:
    return {"certificate": name, "path": path, "error": why}


def _files(pki_dir: str) -> list[dict]:
    found = []
    for directory, subdirs, files in os.walk(pki_dir):
        subdirs.sort()
        for file_name in sorted(f for f in files if f.endswith(".crt")):
            path = os.path.join(directory, file_name)
            name = os.path.relpath(path, pki_dir)
            try:
                with open(path, "rb") as stream:
                    cert = x509.load_pem_x509_certificate(stream.read())
            except (OSError, ValueError) as err:
                found.append(_unreadable(name, path, f"cannot read it: {err}"))
                continue
            found.append(describe(cert, name, path))
    return found


def _kubeconfigs(kubernetes_dir: str) -> list[dict]:
    found = []
    try:
        names = sorted(n for n in os.listdir(kubernetes_dir) if n.endswith(".conf"))
    except FileNotFoundError:
        return found
    for file_name in names:
        path = os.path.join(kubernetes_dir, file_name)
        try:
            with open(path, encoding="utf-8") as stream:
                document = yaml.safe_load(stream) or {}
            users = document.get("users") or []
            data = ((users[0] or {}).get("user") or {}).get(CLIENT_DATA) if users else None
            if not data:
                continue  # no embedded client certificate (a token, a file reference)
            cert = x509.load_pem_x509_certificate(base64.b64decode(data))
        except (OSError, ValueError, yaml.YAMLError, AttributeError, TypeError) as err:
            found.append(_unreadable(file_name, path, f"cannot read its client certificate: {err}"))
            continue
        found.append(describe(cert, file_name, path))
    return found


def read_node(layout) -> list[dict]:
    """Every certificate of this node: the files under the PKI directory (CAs included),
    then each kubeconfig's embedded client certificate, named after the kubeconfig."""
    return _files(layout.pki_dir) + _kubeconfigs(layout.kubernetes_dir)


# -- on the master -----------------------------------------------------------------------
def _when(text: str) -> datetime.datetime:
    return renewal.parse_timestamp(text, "not_after")


def _ca_names(entries: list[dict]) -> dict[str, str]:
    """{CA subject CN: its file name without .crt} on one node (`ca`, `etcd/ca`, ...)."""
    return {e["subject"]: e["certificate"].removesuffix(".crt") for e in entries
            if e.get("ca") and "error" not in e}  # fmt: skip


def _leaf_row(node, entry, cas, now, window) -> dict:
    not_after = _when(entry["not_after"])
    return {
        "node": node,
        "certificate": entry["certificate"],
        "expires": entry["not_after"],
        "days_left": renewal.days_left(not_after, now),
        "ca": cas.get(entry["issuer"], entry["issuer"]),
        "due": renewal.due(not_after, now, window),
        "serial": entry["serial"],
        "path": entry["path"],
    }


def build(answers: dict, cfg: dict, now: datetime.datetime, last_run=None) -> dict:
    """The report: `answers` {node: read_node's list, or an error text when the node did
    not answer or failed}; due leaves from pki.renewBeforeDays, CA warnings from
    renewal.ca_warning_days; `last_run` the scheduled renewal's record (or None)."""
    window, ca_window = renewal.renew_before_days(cfg), renewal.ca_warning_days(cfg)
    rows, problems, cas = [], [], {}
    for node in sorted(answers):
        entries = answers[node]
        if isinstance(entries, str):
            problems.append({"node": node, "certificate": None, "error": entries})
            continue
        names = _ca_names(entries)
        for entry in entries:
            if "error" in entry:
                problems.append({"node": node, "certificate": entry["certificate"],
                                 "error": entry["error"]})  # fmt: skip
            elif entry["ca"]:
                key = (entry["certificate"], entry["serial"])
                ca = cas.setdefault(key, {"certificate": entry["certificate"].removesuffix(".crt"),
                                          "expires": entry["not_after"], "serial": entry["serial"],
                                          "nodes": []})  # fmt: skip
                ca["nodes"].append(node)
            else:
                rows.append(_leaf_row(node, entry, names, now, window))
    ca_rows = []
    for ca in sorted(cas.values(), key=lambda c: (c["certificate"], c["expires"])):
        not_after = _when(ca["expires"])
        ca_rows.append({**ca, "days_left": renewal.days_left(not_after, now),
                        "warning": renewal.due(not_after, now, ca_window)})  # fmt: skip
    return {
        "generated": renewal.timestamp(now),
        "renew_before_days": window,
        "ca_warning_days": ca_window,
        "certificates": rows,
        "cas": ca_rows,
        "problems": problems,
        "warnings": warnings(rows, ca_rows, problems, ca_window),
        "last_renewal": last_run,
    }


def warnings(rows, ca_rows, problems, ca_window) -> list[str]:
    """What the operator must act on, one sentence each."""
    found = []
    for ca in ca_rows:
        if ca["warning"]:
            found.append(
                f"CA {ca['certificate']} (serial {ca['serial']}) expires in {ca['days_left']} "
                f"days, within {ca_window} days (pki.certificateValidityDays): certificates "
                "issued from now on outlive it; rotate it (docs/pki.md, Rotating a CA)"
            )
    for name in sorted({ca["certificate"] for ca in ca_rows
                        if sum(c["certificate"] == ca["certificate"] for c in ca_rows) > 1}):  # fmt: skip
        found.append(f"CA {name}: the nodes hold different certificates (a rotation in progress, "
                     "or a node that missed it): see the CA section")  # fmt: skip
    expired = [r for r in rows if r["days_left"] < 0]
    if expired:
        found.append(f"{len(expired)} certificate(s) expired: renew now with salt-run "
                     "state.orchestrate kubesalt.orchestrate.renew_certificates")  # fmt: skip
    if problems:
        found.append(f"{len(problems)} node(s) or file(s) could not be read: see the rows marked "
                     "'not read'")  # fmt: skip
    return found


# -- the table ---------------------------------------------------------------------------
def _expires(text: str) -> str:
    return _when(text).strftime(EXPIRES_FORMAT)


def _days(days: int) -> str:
    return f"{days}d" if days >= 0 else "expired"


def table(report: dict) -> str:
    """The report as text: the leaves (one row each, nodes that did not answer included),
    the CAs, the warnings, the last scheduled renewal."""
    leaves = [(r["node"], r["certificate"], _expires(r["expires"]), _days(r["days_left"]),
               r["ca"], "yes" if r["due"] else "no") for r in report["certificates"]]  # fmt: skip
    leaves += [(p["node"], p["certificate"] or "-", "not read", "-", "-", p["error"])
               for p in report["problems"]]  # fmt: skip
    leaves.sort(key=lambda line: (line[0], line[1]))
    out = aligned(("NODE", "CERTIFICATE", "EXPIRES", "DAYS LEFT", "ISSUING CA",
                    f"DUE (<{report['renew_before_days']}d)"), leaves)  # fmt: skip
    cas = [(c["certificate"], _expires(c["expires"]), _days(c["days_left"]), c["serial"],
            ", ".join(c["nodes"]), "WARNING" if c["warning"] else "ok") for c in report["cas"]]  # fmt: skip
    out += ["", *aligned(("CERTIFICATE AUTHORITY", "EXPIRES", "DAYS LEFT", "SERIAL", "NODES",
                           f"WINDOW (<{report['ca_warning_days']}d)"), cas)]  # fmt: skip
    out += ["", *[f"WARNING: {w}" for w in report["warnings"]]] if report["warnings"] else []
    out += ["", last_run_line(report.get("last_renewal"))]
    return "\n".join(out)


def last_run_line(record) -> str:
    if not record:
        return (f"Scheduled renewal: no run recorded yet ({LAST_RUN_FILE}); trigger one with "
                f"salt <bootstrap node> schedule.run_job {SCHEDULE_NAME}")  # fmt: skip
    renewed = record.get("renewed") or {}
    what = "; ".join(f"{n}: {', '.join(c)}" for n, c in sorted(renewed.items())) or "nothing"
    return (
        f"Scheduled renewal: last run {record.get('started')} to {record.get('ended')}, "
        f"{record.get('outcome')}: {record.get('message')} Renewed: {what}."
    )


# -- the scheduled renewal's record -------------------------------------------------------
def read_last_run(path: str = LAST_RUN_FILE):
    """The last scheduled renewal's record, None when there is none yet."""
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ReportError(f"cannot read the renewal record {path}: {err}; remove it, the "
                          "next scheduled run writes it again") from None  # fmt: skip


def write_last_run(record: dict, path: str = LAST_RUN_FILE) -> None:
    """Write the record, root-only (0600, its directory 0700), replaced atomically."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=2, sort_keys=True)
        stream.write("\n")
    os.replace(temporary, path)


def _renewed(changes: dict) -> dict[str, list[str]]:
    """{node: [certificate kinds]} from the run's changes: the certs phase of each node,
    nested in the members and workers phases."""
    renewed: dict[str, list[str]] = {}
    for phase in ("members", "workers"):
        for node, node_changes in (changes.get(phase) or {}).items():
            ids = ((node_changes or {}).get("certs") or {}).get("states") or []
            kinds = [OBTAIN_ID.match(i).group("kind") for i in ids if OBTAIN_ID.match(i)]
            if kinds:
                renewed.setdefault(node, []).extend(kinds)
    return renewed


def orchestrate_outcome(ret) -> dict:
    """What a renew_certificates run did, from `state.orchestrate`'s return: `outcome`
    (renewed, nothing due, failed), `message` (the first line of its comment or error)
    and `renewed` {node: [certificate kinds]}."""
    data = ret.get("data") if isinstance(ret, dict) else None
    states = [s for per_master in (data or {}).values() if isinstance(per_master, dict)
              for s in per_master.values() if isinstance(s, dict) and "result" in s]  # fmt: skip
    if not states:
        return {"outcome": "failed", "message": f"the orchestration did not run: {ret!r}"[:500],
                "renewed": {}}  # fmt: skip
    state = states[0]
    comment = str(state.get("comment") or "")
    first = comment.splitlines()[0] if comment else ""
    if state.get("result") is False:
        return {"outcome": "failed", "message": first, "renewed": {}}
    renewed = _renewed(state.get("changes") or {})
    if not renewed:
        return {"outcome": "nothing due", "message": "no certificate was due.", "renewed": {}}
    count = sum(len(kinds) for kinds in renewed.values())
    message = f"{count} certificate(s) renewed on {len(renewed)} node(s)."
    return {"outcome": "renewed", "message": message, "renewed": renewed}


# When the daily renewal starts (then within the splay): after the daily backup
# (kubesalt.backup_job.BACKUP_CRON, whose reasons hold here too).
RENEW_CRON = "45 2 * * *"


def schedule_config(saltenv: str, cron: str = RENEW_CRON, splay: int = 900) -> str:
    """/etc/salt/minion.d/kubesalt-schedule.conf of the bootstrap node: the daily renewal
    (`kubesalt_certs.renew_scheduled`, one run at a time, started within `splay` seconds
    after the `cron` time, so that it does not fall on the same second every day)."""
    item = {
        "function": "kubesalt_certs.renew_scheduled",
        "args": [saltenv],
        "cron": cron,
        "splay": splay,
        "maxrunning": 1,
    }
    header = (
        "# Managed by kubesalt (state kubesalt.pki.scheduled): the daily certificate renewal.\n"
        f"# Run it now: salt <this node> schedule.run_job {SCHEDULE_NAME}\n"
    )
    return header + yaml.safe_dump({"schedule": {SCHEDULE_NAME: item}}, sort_keys=False)
