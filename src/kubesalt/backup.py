"""Backups of the bootstrap node: what goes in, one archive, verify, retention, restore
(docs/backup.md).

An archive is a gzip'd tar, mode 0600, in a 0700 directory, written atomically (a temporary
file in the same directory, fsync, rename). Its members:

- `manifest.json`: the format, the product version, the time, the host, the registered
  archives' versions, each file (its path on the node, mode, owner, size, sha256) and the
  etcd snapshot (the member it came from, its revision and hash, its sha256);
- `files/<path>`: each file, at its path on the node without the leading `/`;
- `etcd/snapshot.db`: the etcd snapshot (`etcdctl snapshot save`, kubesalt.backup_etcd).

Nothing here runs a program: the etcd snapshot's own check comes in as a function
(`backup_etcd.snapshot_status`), so every rule is unit-tested with files under tmp_path.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import yaml

import kubesalt
from kubesalt import inventory
from kubesalt.bootstrap import archive as karchive
from kubesalt.bootstrap import services
from kubesalt.digests import file_sha256
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm.model import CA_FILES, Layout

BACKUP_DIR = "/var/lib/kubesalt/backups"
DEFAULT_KEEP = 7
PREFIX = "kubesalt-backup-"
SUFFIX = ".tar.gz"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_PATTERN = re.compile(r"^kubesalt-backup-[0-9]{8}T[0-9]{6}Z\.tar\.gz$")
MANIFEST = "manifest.json"
FILES_DIR = "files"
SNAPSHOT_MEMBER = "etcd/snapshot.db"
FORMAT = 1
PRODUCT = "kubesalt"
# The salt-master's keys (bootstrap.sh's MASTER_PKI) and the accepted minion keys in it.
MASTER_PKI = "/etc/salt/pki/master"
MINION_PKI = posixpath.dirname(services.MINION_PUB)
_CHUNK = 1 << 20


class BackupError(KubesaltError):
    """A backup cannot be written, or an archive cannot be used; the message says why."""


class VerifyError(BackupError):
    """An archive fails verification; `problems` lists every problem found."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{path} fails verification ({len(problems)} problem(s)):\n{lines}")


class RestoreError(BackupError):
    """A restore is refused; nothing was written."""


# -- what goes in -----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A file (or, with `directory`, every regular file directly in a directory) to back
    up: `path` as on the node, `what` it is for errors, whether a backup needs it."""

    path: str
    what: str
    required: bool = True
    directory: bool = False


def sources(nodes: dict[str, inventory.Node], config_path: str = services.CONFIG_PATH,
            inventory_dir: str = services.INVENTORY_DIR, this: str | None = None) -> list[Source]:  # fmt: skip
    """Everything of the bootstrap node a restore needs, given the declared nodes (their
    SSH keys are backed up too): the configuration, the archives register, the inventory
    with its known_hosts, the minion keys read back at deploy, the cluster CAs and the
    service-account key, the salt-master's keys and the accepted minion keys, this node's
    own minion key (the master accepted it). `this`, the bootstrap node, is never reached
    over SSH (bootstrap.sh declares it with the default key path): its key is backed up only
    when it exists."""
    layout = Layout()
    found = [
        Source(config_path, "bootstrap.yaml"),
        Source(karchive.REGISTER, "the archives register (bootstrap.sh writes it)"),
        Source(inventory_dir, "the inventory and its known_hosts", directory=True),
        Source(
            services.MINION_KEYS_DIR,
            "the minion keys read back by deploy_node",
            False,
            directory=True,
        ),
    ]
    users: dict[str, list[str]] = {}
    for name, node in sorted(nodes.items()):
        users.setdefault(node.key, []).append(name)
    for key, names in sorted(users.items()):
        reached = names != [this]  # a key only this node names is never used
        found.append(Source(key, f"the SSH key (ssh.key) of node(s) {', '.join(names)}",
                            required=reached))  # fmt: skip
        found.append(Source(f"{key}.pub", f"the public SSH key of node(s) {', '.join(names)}",
                            required=False))  # fmt: skip
    for kind, base in CA_FILES.items():
        found.append(Source(layout.pki(f"{base}.crt"), f"the {kind} certificate"))
        found.append(Source(layout.pki(f"{base}.key"), f"the {kind} private key"))
    found.append(Source(layout.pki("sa.key"), "the service-account key"))
    found.append(Source(layout.pki("sa.pub"), "the service-account public key"))
    found += [
        Source(f"{MASTER_PKI}/master.pem", "the salt-master's private key"),
        Source(f"{MASTER_PKI}/master.pub", "the salt-master's public key"),
        Source(f"{MASTER_PKI}/minions", "the accepted minion keys", directory=True),
        Source(f"{MINION_PKI}/minion.pem", "this node's salt-minion private key"),
        Source(f"{MINION_PKI}/minion.pub", "this node's salt-minion public key"),
    ]
    return found


def under(root: str, path: str) -> str:
    """`path` (absolute, as on the node) under `root`."""
    if root in ("", "/"):
        return path
    return os.path.join(root, path.lstrip("/"))


@dataclass(frozen=True)
class FileEntry:
    """One backed-up file as the manifest records it; `data` is its content."""

    path: str
    mode: int
    uid: int
    gid: int
    sha256: str
    data: bytes = field(repr=False, compare=False, default=b"")

    @property
    def member(self) -> str:
        return member_name(self.path)

    def to_dict(self) -> dict:
        return {"path": self.path, "member": self.member, "mode": f"{self.mode:04o}",
                "uid": self.uid, "gid": self.gid, "size": len(self.data),
                "sha256": self.sha256}  # fmt: skip


@dataclass(frozen=True)
class DirEntry:
    """A directory holding backed-up files: its mode and owner, restored with them."""

    path: str
    mode: int
    uid: int
    gid: int

    def to_dict(self) -> dict:
        return {"path": self.path, "mode": f"{self.mode:04o}", "uid": self.uid, "gid": self.gid}


def member_name(path: str) -> str:
    """The tar member of the file at `path` on the node: `files/etc/kubesalt/...`."""
    return f"{FILES_DIR}/{path.lstrip('/')}"


def _read_entry(path: str, host_path: str) -> FileEntry:
    with open(host_path, "rb") as stream:
        info = os.fstat(stream.fileno())
        data = stream.read()
    return FileEntry(path, info.st_mode & 0o7777, info.st_uid, info.st_gid,
                     hashlib.sha256(data).hexdigest(), data)  # fmt: skip


def _files_of(source: Source, root: str) -> list[str]:
    """The paths (as on the node) `source` names that exist under `root`."""
    host = under(root, source.path)
    if not source.directory:
        return [source.path] if os.path.isfile(host) else []
    if not os.path.isdir(host):
        return []
    return [
        posixpath.join(source.path, name)
        for name in sorted(os.listdir(host))
        # Dot files are the inventory's temporary files, caught mid-write.
        if not name.startswith(".") and os.path.isfile(os.path.join(host, name))
    ]


def collect(found: Iterable[Source], root: str = "/") -> tuple[list[FileEntry], list[DirEntry]]:
    """Read every file of `found` under `root` (each one once: what is hashed is what is
    archived), and the mode and owner of each directory holding one. BackupError listing
    every required file or directory that is missing."""
    entries: dict[str, FileEntry] = {}
    missing = []
    for source in found:
        paths = _files_of(source, root)
        exists = os.path.isdir(under(root, source.path)) if source.directory else bool(paths)
        if not exists:
            if source.required:
                kind = "directory" if source.directory else "file"
                missing.append(f"{source.path} ({source.what}): no such {kind}")
            continue
        for path in paths:
            if path not in entries:
                entries[path] = _read_entry(path, under(root, path))
    if missing:
        lines = "\n".join(f"  {line}" for line in missing)
        raise BackupError(
            f"cannot back up this node: {len(missing)} required file(s) missing under "
            f"{root}:\n{lines}\nRun kubesalt-backup on the bootstrap node once bootstrap.sh "
            "has completed; for a node's SSH key, put the key back at its ssh.key path or "
            "declare the node again with its key (kubesalt_inventory.declare)"
        )
    directories = {}
    for path in entries:
        parent = posixpath.dirname(path)
        if parent not in directories:
            info = os.stat(under(root, parent))
            directories[parent] = DirEntry(parent, info.st_mode & 0o7777, info.st_uid, info.st_gid)
    return [entries[p] for p in sorted(entries)], [directories[p] for p in sorted(directories)]


def timestamp(moment: datetime.datetime) -> str:
    """`2026-12-04T14:00:00Z`: the manifest's time."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_name(moment: datetime.datetime) -> str:
    """`kubesalt-backup-20261204T140000Z.tar.gz`: names sort as the times do."""
    return f"{PREFIX}{moment.astimezone(datetime.UTC).strftime(TIME_FORMAT)}{SUFFIX}"


def archive_time(name: str) -> datetime.datetime:
    """When the archive called `name` (a NAME_PATTERN name) was taken, in UTC."""
    stamp = name.removeprefix(PREFIX).removesuffix(SUFFIX)
    return datetime.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Snapshot:
    """The etcd snapshot of a backup: the file, where it came from, what it holds."""

    path: str
    member: str  # the member's name (empty when etcd did not say)
    member_id: str
    endpoint: str
    revision: int | None  # from `snapshot status`; None when no tool could read it
    hash: int | None
    members: tuple[dict, ...] = ()  # the member list at save time (restore-etcd asks them)

    def to_dict(self, sha256: str, size: int) -> dict:
        return {"member": self.member, "member_id": self.member_id, "endpoint": self.endpoint,
                "revision": self.revision, "hash": self.hash, "members": list(self.members),
                "file": SNAPSHOT_MEMBER, "size": size, "sha256": sha256}  # fmt: skip


def manifest(files: list[FileEntry], directories: list[DirEntry], snapshot: dict,
             created: datetime.datetime, host: str, archives: Iterable[str] = (),
             version: str = kubesalt.__version__) -> dict:  # fmt: skip
    """The manifest of one archive (`snapshot`: Snapshot.to_dict)."""
    return {
        "format": FORMAT,
        "product": {"name": PRODUCT, "version": version},
        "created": timestamp(created),
        "host": host,
        "archives": sorted(set(archives)),
        "directories": [d.to_dict() for d in directories],
        "files": [f.to_dict() for f in files],
        "etcd": snapshot,
    }


# -- writing ----------------------------------------------------------------------------


def ensure_directory(path: str) -> None:
    """Create `path` 0700 (its parents 0755), or narrow an existing one to 0700: the
    archives hold the cluster's private keys."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)


def _tar_info(name: str, size: int, mode: int, uid: int = 0, gid: int = 0,
              mtime: float = 0) -> tarfile.TarInfo:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = size, mode, uid, gid, mtime
    info.uname = info.gname = ""
    return info


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_archive(out_dir: str, name: str, data: dict, files: list[FileEntry],
                  snapshot_path: str) -> str:  # fmt: skip
    """Write the archive `out_dir/name` (0600) atomically: a temporary file in `out_dir`,
    fsync, rename, fsync of the directory. A failure leaves no partial archive."""
    ensure_directory(out_dir)
    final = os.path.join(out_dir, name)
    created = datetime.datetime.strptime(data["created"], "%Y-%m-%dT%H:%M:%SZ")
    mtime = created.replace(tzinfo=datetime.UTC).timestamp()
    handle, temporary = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                text = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
                tar.addfile(_tar_info(MANIFEST, len(text), 0o600, mtime=mtime), io.BytesIO(text))
                for entry in files:
                    info = _tar_info(entry.member, len(entry.data), entry.mode, entry.uid,
                                     entry.gid, mtime)  # fmt: skip
                    tar.addfile(info, io.BytesIO(entry.data))
                size = os.path.getsize(snapshot_path)
                with open(snapshot_path, "rb") as stream:
                    tar.addfile(_tar_info(SNAPSHOT_MEMBER, size, 0o600, mtime=mtime), stream)
            raw.flush()
            os.fsync(raw.fileno())
        os.rename(temporary, final)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(out_dir)
    return final


# -- retention --------------------------------------------------------------------------


def check_keep(value, what: str = "--keep") -> int:
    """A number of archives to keep: a whole number of at least 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1 or str(number) != str(value).strip():
        raise BackupError(
            f"{what} {value!r}: give how many archives to keep, a whole number of at least 1 "
            f"(default {DEFAULT_KEEP})"
        )
    return number


def archives_in(directory: str) -> list[str]:
    """The backup archives in `directory` named as kubesalt-backup names them, oldest first
    (other files are never touched)."""
    if not os.path.isdir(directory):
        return []
    return sorted(name for name in os.listdir(directory) if NAME_PATTERN.match(name))


def to_prune(names: list[str], keep: int) -> list[str]:
    """The names beyond the `keep` newest (names sort by time)."""
    ordered = sorted(names)
    return ordered[: max(0, len(ordered) - keep)]


def prune(directory: str, keep: int) -> list[str]:
    """Delete all but the `keep` newest archives of `directory`; the paths deleted."""
    removed = []
    for name in to_prune(archives_in(directory), check_keep(keep)):
        path = os.path.join(directory, name)
        os.unlink(path)
        removed.append(path)
    return removed


# -- verify -----------------------------------------------------------------------------

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _check_mode(value, where: str, problems: list[str]) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[0-7]{3,4}", value):
        return int(value, 8)
    problems.append(f"{where}: mode {value!r} is not an octal mode such as 0600")
    return None


def _check_path(value, where: str, problems: list[str]) -> bool:
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or posixpath.normpath(value) != value
        or value == "/"
    ):
        problems.append(f"{where}: path {value!r} is not a normalized absolute path")
        return False
    return True


def _check_owner(item: dict, where: str, problems: list[str]) -> None:
    for key in ("uid", "gid"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{where}: {key} {value!r} is not a user or group number")


def check_manifest(data) -> list[str]:
    """Every problem of a manifest: its format, product, time, files (paths, members,
    modes, owners, digests, no path twice), directories and etcd snapshot entry."""
    if not isinstance(data, dict):
        return [f"{MANIFEST} is not a JSON object"]
    problems = []
    if data.get("format") != FORMAT:
        problems.append(
            f"{MANIFEST}: format {data.get('format')!r} is not {FORMAT}; verify it with the "
            "kubesalt version that wrote it"
        )
    product = data.get("product")
    if not isinstance(product, dict) or product.get("name") != PRODUCT:
        problems.append(f"{MANIFEST}: product {product!r} is not kubesalt")
    elif not isinstance(product.get("version"), str) or not re.match(
        karchive.VERSION_PATTERN, product["version"]
    ):
        problems.append(f"{MANIFEST}: product version {product.get('version')!r} is not a version")
    try:
        datetime.datetime.strptime(str(data.get("created")), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        problems.append(f"{MANIFEST}: created {data.get('created')!r} is not a UTC time")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        problems.append(f"{MANIFEST}: files is missing or empty")
        files = []
    seen = set()
    for index, item in enumerate(files):
        where = f"{MANIFEST}: files[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} is not an object")
            continue
        path = item.get("path")
        if _check_path(path, where, problems):
            if path in seen:
                problems.append(f"{where}: {path} is listed twice")
            seen.add(path)
            if item.get("member") != member_name(path):
                problems.append(f"{where}: member {item.get('member')!r} is not "
                                f"{member_name(path)!r}")  # fmt: skip
        _check_mode(item.get("mode"), where, problems)
        _check_owner(item, where, problems)
        if not isinstance(item.get("sha256"), str) or not _HEX64.match(item["sha256"]):
            problems.append(f"{where}: sha256 {item.get('sha256')!r} is not a sha256")
    for index, item in enumerate(data.get("directories") or []):
        where = f"{MANIFEST}: directories[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} is not an object")
            continue
        _check_path(item.get("path"), where, problems)
        _check_mode(item.get("mode"), where, problems)
        _check_owner(item, where, problems)
    etcd = data.get("etcd")
    if not isinstance(etcd, dict):
        problems.append(f"{MANIFEST}: etcd (the snapshot's entry) is missing")
    else:
        if etcd.get("file") != SNAPSHOT_MEMBER:
            problems.append(f"{MANIFEST}: etcd.file {etcd.get('file')!r} is not {SNAPSHOT_MEMBER}")
        if not isinstance(etcd.get("sha256"), str) or not _HEX64.match(etcd["sha256"]):
            problems.append(f"{MANIFEST}: etcd.sha256 {etcd.get('sha256')!r} is not a sha256")
    return problems


@dataclass(frozen=True)
class Verified:
    """A verified archive: its manifest and how its etcd snapshot was checked."""

    path: str
    manifest: dict
    files: int
    snapshot_check: str


SnapshotStatus = Callable[[str], "dict | None"]


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(info)
    return stream.read() if stream is not None else b""


def _load_manifest(tar: tarfile.TarFile, path: str) -> dict:
    try:
        info = tar.getmember(MANIFEST)
    except KeyError:
        raise VerifyError(path, [f"no {MANIFEST}: this is not a kubesalt backup"]) from None
    try:
        return json.loads(_read_member(tar, info))
    except ValueError as err:
        raise VerifyError(path, [f"{MANIFEST} is not JSON ({err})"]) from None


def _check_snapshot(tar, info, etcd: dict, status: SnapshotStatus | None,
                    problems: list[str]) -> str:  # fmt: skip
    """Check the snapshot member against the manifest; with `status`, extract it (0600,
    in a private temporary directory) and let etcd's own tool read it."""
    with tempfile.TemporaryDirectory(prefix="kubesalt-verify-") as scratch:
        path = os.path.join(scratch, "snapshot.db")
        with tar.extractfile(info) as source, open(path, "wb") as target:
            os.fchmod(target.fileno(), 0o600)
            while chunk := source.read(_CHUNK):
                target.write(chunk)
        digest, size = file_sha256(path)
        if digest != etcd.get("sha256"):
            problems.append(
                f"{SNAPSHOT_MEMBER}: sha256 {digest} is not the {etcd.get('sha256')} recorded "
                "at save: the snapshot was changed or damaged"
            )
            return "sha256 differs"
        found = status(path) if status else None
    if found is None:
        return "sha256 as recorded at save (no etcdutl or etcdctl to read the snapshot)"
    tool = found.get("tool", "etcdctl")
    if found.get("error"):
        problems.append(f"{SNAPSHOT_MEMBER}: {tool} snapshot status failed: {found['error']}")
        return f"{tool} snapshot status failed"
    for key in ("revision", "hash"):
        if etcd.get(key) is not None and found.get(key) != etcd[key]:
            problems.append(
                f"{SNAPSHOT_MEMBER}: {tool} snapshot status gives {key} {found.get(key)}, "
                f"not the {etcd[key]} recorded at save"
            )
    return (
        f"sha256 as recorded, and {tool} snapshot status: revision {found.get('revision')}, "
        f"{found.get('totalKey')} keys"
    )


def verify(path: str, status: SnapshotStatus | None = None) -> Verified:
    """Check an archive: a gzip'd tar of regular files only; a consistent manifest; every
    file listed present with its sha256 and mode, and nothing else; the etcd snapshot's
    sha256, and with `status` (backup_etcd.snapshot_status) etcd's own reading of it.
    VerifyError lists every problem."""
    try:
        tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 (closed by the `with` below)
    except (OSError, tarfile.TarError, EOFError) as err:
        raise VerifyError(path, [f"cannot be read as a gzip'd tar ({err})"]) from None
    with tar:
        data = _load_manifest(tar, path)
        problems = check_manifest(data)
        if problems:
            raise VerifyError(path, problems)
        listed = {item["member"]: item for item in data["files"]}
        seen: set[str] = set()
        snapshot_check = ""
        try:
            members = tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as err:
            raise VerifyError(path, [f"the tar is damaged ({err})"]) from None
        for info in members:
            if info.name in seen:
                problems.append(f"{info.name}: in the archive twice")
                continue
            seen.add(info.name)
            if not info.isfile():
                problems.append(f"{info.name}: not a regular file (a link or directory)")
            elif info.name == SNAPSHOT_MEMBER:
                snapshot_check = _check_snapshot(tar, info, data["etcd"], status, problems)
            elif info.name in listed:
                _check_file(tar, info, listed[info.name], problems)
            elif info.name != MANIFEST:
                problems.append(f"{info.name}: in the archive but not in {MANIFEST}")
        for name in listed:
            if name not in seen:
                problems.append(f"{name}: listed in {MANIFEST} but missing from the archive")
        if SNAPSHOT_MEMBER not in seen:
            problems.append(f"{SNAPSHOT_MEMBER}: the etcd snapshot is missing")
    if problems:
        raise VerifyError(path, problems)
    return Verified(path, data, len(listed), snapshot_check)


def _check_file(tar, info, item: dict, problems: list[str]) -> None:
    try:
        content = _read_member(tar, info)
    except (OSError, tarfile.TarError, EOFError) as err:
        problems.append(f"{info.name}: cannot be read ({err})")
        return
    digest = hashlib.sha256(content).hexdigest()
    if digest != item["sha256"]:
        problems.append(f"{info.name}: sha256 {digest} is not the {item['sha256']} recorded")
    if f"{info.mode:04o}" != item["mode"]:
        problems.append(f"{info.name}: mode {info.mode:04o} is not the {item['mode']} recorded")


# -- restore ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One step of a restore: create a `directory`, or write a `file` (its `data`)."""

    kind: str
    path: str
    mode: int
    uid: int
    gid: int
    sha256: str = ""
    data: bytes = field(default=b"", repr=False, compare=False)

    def describe(self) -> str:
        what = "directory" if self.kind == "directory" else "file"
        return f"{what} {self.path} (mode {self.mode:04o}, owner {self.uid}:{self.gid})"


def check_version(data: dict, product_version: str, available: Iterable[str]) -> None:
    """Refuse an archive of another product version unless an archive (ISO) of its
    version is at hand: the restored node serves that version's Salt tree."""
    wanted = data["product"]["version"]
    if wanted == product_version or wanted in set(available):
        return
    raise RestoreError(
        f"refusing to restore a kubesalt {wanted} backup with kubesalt {product_version}: the "
        f"cluster runs {wanted}'s states and packages. Run bootstrap.sh --restore from the "
        f"kubesalt {wanted} ISO, or also give that ISO (--archive, or archives in "
        "bootstrap.yaml) so that its version is present"
    )


def restore_plan(path: str, product_version: str = kubesalt.__version__,
                 available: Iterable[str] = (), status: SnapshotStatus | None = None
                 ) -> list[Action]:  # fmt: skip
    """What to put back where, with which owner and mode: each directory, then each file
    of a verified archive. Refuses (RestoreError) an archive that fails verification or
    has another product version (see check_version). The etcd snapshot is not part of it:
    it is for a cluster that lost quorum (backup_etcd.restore_etcd)."""
    try:
        verified = verify(path, status)
    except VerifyError as err:
        raise RestoreError(f"refusing to restore: {err}") from None
    check_version(verified.manifest, product_version, available)
    actions = [
        Action("directory", item["path"], int(item["mode"], 8), item["uid"], item["gid"])
        for item in verified.manifest.get("directories") or []
    ]
    with tarfile.open(path, mode="r:gz") as tar:
        for item in verified.manifest["files"]:
            data = _read_member(tar, tar.getmember(item["member"]))
            actions.append(Action("file", item["path"], int(item["mode"], 8), item["uid"],
                                  item["gid"], item["sha256"], data))  # fmt: skip
    return actions


def _conflicts(plan: list[Action], root: str) -> list[str]:
    """The files of `plan` that exist under `root` with another content."""
    found = []
    for action in plan:
        target = under(root, action.path)
        if (
            action.kind == "file"
            and os.path.lexists(target)
            and (not os.path.isfile(target) or file_sha256(target)[0] != action.sha256)
        ):
            found.append(action.path)
    return found


def _set_owner(path: str, action: Action) -> None:
    # Only root can give a file away; a test run as a user keeps its own.
    if os.geteuid() == 0:
        os.chown(path, action.uid, action.gid)


def _write_file(target: str, action: Action) -> bool:
    if os.path.isfile(target) and file_sha256(target)[0] == action.sha256:
        changed = os.stat(target).st_mode & 0o7777 != action.mode
        os.chmod(target, action.mode)
        _set_owner(target, action)
        return changed
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".restore.")
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), action.mode)
            stream.write(action.data)
            stream.flush()
            os.fsync(stream.fileno())
        _set_owner(temporary, action)
        os.rename(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def apply_restore(plan: list[Action], root: str = "/", overwrite: bool = False) -> list[str]:
    """Carry out a restore plan under `root`: directories created (missing parents 0755)
    with their mode and owner, files written atomically with theirs. A file already there
    with the same content is left (its mode and owner set); one with another content is a
    conflict: RestoreError naming every one, before anything is written, unless
    `overwrite`. Returns the paths (as on the node) created or changed."""
    conflicts = [] if overwrite else _conflicts(plan, root)
    if conflicts:
        lines = "\n".join(f"  {path}" for path in conflicts)
        raise RestoreError(
            f"refusing to restore: {len(conflicts)} file(s) exist under {root} with another "
            f"content:\n{lines}\nRestore onto a fresh machine, or move these files away "
            "first if they are to be replaced (nothing was written)"
        )
    changed = []
    for action in plan:
        target = under(root, action.path)
        if action.kind == "directory":
            existed = os.path.isdir(target)
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.makedirs(target, mode=action.mode, exist_ok=True)
            os.chmod(target, action.mode)
            _set_owner(target, action)
            if not existed:
                changed.append(action.path)
            continue
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        if _write_file(target, action):
            changed.append(action.path)
    return changed


def restored_node(plan: list[Action], config_path: str = services.CONFIG_PATH,
                  inventory_dir: str = services.INVENTORY_DIR) -> inventory.Node:  # fmt: skip
    """The bootstrap node a restore plan brings back: its bootstrap.yaml's CA minion, as
    the inventory of the archive declares it (its `host` is the control-plane IP the
    other nodes reach it at)."""
    files = {action.path: action.data for action in plan if action.kind == "file"}
    try:
        name = yaml.safe_load(files[config_path])["ca"]["minion"]
        path = posixpath.join(inventory_dir, f"{name}.yaml")
        return inventory.node_from_document(yaml.safe_load(files[path]), path)
    except (KeyError, TypeError, yaml.YAMLError, inventory.InventoryError) as err:
        raise RestoreError(
            f"the archive holds no usable bootstrap.yaml ({config_path}) naming a declared "
            f"CA minion ({type(err).__name__}: {err}); take a new backup with kubesalt-backup"
        ) from None
