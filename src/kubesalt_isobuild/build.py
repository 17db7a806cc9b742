"""``iso/build``: build the ISO of one flavour. Each step is printed with its duration.

Exit codes: 0 built, 1 build failure (the message names the artifact and what to do),
2 usage error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kubesalt.bootstrap import archive
from kubesalt.bootstrap.phases import BootstrapError
from kubesalt.errors import KubesaltError
from kubesalt.kubeadm import images as pinned_images
from kubesalt_isobuild import debs, images, oci, pywheel, repos, rpms, tree, wheels
from kubesalt_isobuild.cache import Store
from kubesalt_isobuild.errors import (
    IsoBuildError,
    ManifestError,
    UnknownFlavourError,
    UnpinnedArtifactError,
)
from kubesalt_isobuild.manifest import Flavour, Manifest, load_manifest
from kubesalt_isobuild.signing import Signer
from kubesalt_isobuild.util import Steps, sha256_file

LOCK = archive.LOCK
# The run-time package and what it needs: the same as pyproject.toml's [project] dependencies.
RUNTIME_PACKAGE = "kubesalt"
RUNTIME_REQUIRES = ("pyyaml", "netaddr")


@dataclass
class Options:
    manifest: Path
    flavour: str
    out: Path
    project: Path
    version: str
    cache: Path | None = None
    fill_cache: bool = False
    gpg_key: Path | None = None
    allow_unpinned: bool = False
    iso: bool = True
    kubernetes_version: str = field(default_factory=pinned_images.default_version)
    date: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))


@dataclass
class Result:
    tree: Path
    iso: Path | None
    lock: dict
    timings: list[tuple[str, float]]
    artifact_bytes: int
    image_stats: oci.CopyStats
    fingerprint: str  # of the key that signed the repositories and SHA256SUMS


def unpinned(flavour: Flavour) -> list[str]:
    out = [p.label for p in flavour.packages if p.sha256 is None]
    out += [i.label for i in flavour.images if i.digest is None and not i.build]
    out += [w.label for w in flavour.wheels if w.sha256 is None]
    return out


def selected_flavour(
    manifest: Manifest, name: str, kubernetes_version: str | None = None
) -> Flavour:
    flavour = manifest.flavour(name)
    if flavour.kubernetes_images:
        listed = {i.ref for i in flavour.images}
        pinned = images.kubernetes_images(kubernetes_version)
        extra = tuple(i for i in pinned if i.ref not in listed)
        flavour = replace(flavour, images=flavour.images + extra)
    unsourced = images.unsourced_images(flavour.images, manifest)
    if unsourced:
        raise ManifestError(unsourced, str(manifest.path))
    return flavour


def checked_version(version: str) -> str:
    """``version`` when bootstrap.sh will accept it (archive.VERSION_PATTERN)."""
    try:
        return archive.check_version(version, "--version", hint="give another --version")
    except BootstrapError as err:
        raise IsoBuildError(str(err)) from err


def checked_kubernetes_version(version: str) -> str:
    """``version`` in its ``v`` form when kubesalt supports that Kubernetes release."""
    try:
        return pinned_images.supported(version)
    except KubesaltError as err:
        raise IsoBuildError(f"--kubernetes-version: {err}") from err


def manifest_release(version: str) -> str | None:
    """The ``kubernetes_releases`` entry of the manifest to apply: None for the default
    release, whose sources and packages the manifest holds itself."""
    return None if version == pinned_images.default_version() else version


def archive_digests(
    lock_images: list[dict], kubernetes_version: str | None = None
) -> dict[str, str]:
    """``repository:tag`` -> digest in the ISO's layout (what the bootstrap registry serves)
    of each image kubesalt pins (kubesalt.kubeadm.images) for the archive's release."""
    release = kubernetes_version or pinned_images.default_version()
    pinned = {img.reference for img in pinned_images.all_images(release).values()}
    return {entry["ref"]: entry["digest"] for entry in lock_images if entry["ref"] in pinned}


def bootstrap_wheels(lock_wheels: list[dict]) -> tuple[str, tuple[str, ...]]:
    """The kubesalt wheel and the library wheels bootstrap.sh unpacks (RUNTIME_REQUIRES), as
    archive paths for product.txt; empty when the flavour ships no kubesalt wheel."""
    files = {entry["name"].lower().replace("_", "-"): entry["file"] for entry in lock_wheels}
    if RUNTIME_PACKAGE not in files:
        return "", ()
    missing = [name for name in RUNTIME_REQUIRES if name not in files]
    if missing:
        raise IsoBuildError(
            f"the flavour ships the kubesalt wheel but no wheel of {', '.join(missing)}, which "
            "bootstrap.sh needs to run it: add them to the flavour's wheels in the manifest"
        )
    return files[RUNTIME_PACKAGE], tuple(files[name] for name in RUNTIME_REQUIRES)


def build(opts: Options, steps: Steps | None = None) -> Result:
    """Build the ISO tree (and the ISO) described by ``opts``."""
    steps = steps or Steps()
    with steps.step("Load and validate the manifest"):
        checked_version(opts.version)
        release = checked_kubernetes_version(opts.kubernetes_version)
        manifest = load_manifest(opts.manifest, manifest_release(release))
        flavour = selected_flavour(manifest, opts.flavour, release)
        missing_pins = unpinned(flavour)
        if missing_pins and not opts.allow_unpinned:
            raise UnpinnedArtifactError(missing_pins)
        steps.info(f"flavour {flavour.name}: {len(flavour.packages)} pinned packages, "
                   f"{len(flavour.resolve)} closures, {len(flavour.images)} images, "
                   f"{len(flavour.wheels)} wheels; Kubernetes {release}")  # fmt: skip
    opts.out.mkdir(parents=True, exist_ok=True)
    name = f"{manifest.product}-{opts.version}"
    root = opts.out / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=opts.out))
    signer = Signer()
    if opts.cache is not None:
        store = Store(opts.cache, offline=not opts.fill_cache)
    else:
        store = Store(work / "cache", offline=False, label="<a cache directory>")
    lock: dict = {"flavour": flavour.name, "version": opts.version, "deb": [], "rpm": [], "images": [],
                  "wheels": []}  # fmt: skip
    total = 0
    try:
        with steps.step("Prepare the signing key"):
            if opts.gpg_key:
                signer.import_key(opts.gpg_key)
            else:
                signer.generate()
                signer.export_secret(opts.out / "signing-key.asc")
                steps.info(
                    f"generated; secret key kept in {opts.out / 'signing-key.asc'} (not on the ISO)"
                )
            signer.export_public(root / archive.KEYRING, armor=False)
            signer.export_public(root / "kubesalt-archive-key.asc", armor=True)
            steps.info(f"key {signer.fingerprint}")
        total += _packages(flavour, manifest, store, work, root, opts, signer, lock, steps)
        total += _images(
            flavour, manifest, store, work, root, lock, steps, stats := oci.CopyStats()
        )
        total += _wheels(flavour, manifest, store, work, root, lock, steps, opts)
        with steps.step("Copy the Salt tree, the pillar and the scripts; write product.txt"):
            copied = tree.copy_project(opts.project, root)
            steps.info(f"copied {', '.join(copied) or 'nothing'} from {opts.project}")
            revision = tree.git_revision(opts.project)
            own, libraries = bootstrap_wheels(lock["wheels"])
            text = tree.product_text(
                manifest.product, opts.version, revision, opts.date, flavour.name, own, libraries,
                kubernetes_version=release,
            )  # fmt: skip
            (root / archive.PRODUCT).write_text(text)
            (root / LOCK).write_text(yaml.safe_dump(lock, sort_keys=False))
            shutil.copyfile(root / LOCK, opts.out / "resolved.yaml")
        with steps.step("Write and sign SHA256SUMS"):
            count = tree.write_sums(root)
            tree.sign_sums(root, signer)
            steps.info(f"{count} files; {archive.SUMS_SIGNATURE} by key {signer.fingerprint}")
        iso = None
        if opts.iso:
            with steps.step("Make the ISO with xorriso"):
                iso = opts.out / f"{name}.iso"
                tree.make_iso(root, iso, tree.volume_id(manifest.product, opts.version), opts.date)
                steps.info(f"{iso} ({iso.stat().st_size / 1e6:.1f} MB)")
    finally:
        signer.close()
        shutil.rmtree(work, ignore_errors=True)
    return Result(root, iso, lock, steps.timings, total, stats, signer.fingerprint)


def _packages(flavour, manifest, store, work, root, opts, signer, lock, steps) -> int:
    total = 0
    debs_found: dict[str, tuple] = {}
    rpms_found: dict[str, tuple] = {}
    if "deb" in flavour.kinds():
        with steps.step("Fetch DEB packages"):
            index = debs.AptIndex(manifest.sources, flavour.arch)
            for pkg in flavour.packages:
                if pkg.kind == "deb":
                    path, sha = debs.fetch_deb(pkg, store, index, work)
                    debs_found[path.name] = (pkg, path, sha)
            for req in flavour.resolve:
                if req.kind == "deb":
                    closure = debs.resolve_deb_closure(
                        req, manifest.sources, flavour.arch, store, work
                    )
                    steps.info(f"{req.label}: {len(closure)} packages")
                    for pkg, path in closure:
                        debs_found.setdefault(path.name, (pkg, path, pkg.sha256))
        with steps.step("Build the signed apt repository"):
            items = [(p, s) for _pkg, p, s in (debs_found[k] for k in sorted(debs_found))]
            repos.build_apt_repo(
                items, root / archive.APT_DIR, flavour.arch, opts.date, opts.version, signer
            )
            for key in sorted(debs_found):
                pkg, path, sha = debs_found[key]
                total += path.stat().st_size
                lock["deb"].append({"name": pkg.name, "version": pkg.version, "arch": pkg.arch,
                                    "sha256": sha,
                                    "file": f"deb/pool/{debs.deb_filename(pkg.name, pkg.version, pkg.arch)}"})  # fmt: skip
            steps.info(f"{len(debs_found)} packages")
    if "rpm" in flavour.kinds():
        with steps.step("Fetch RPM packages"):
            index = rpms.YumIndex(manifest.sources)
            for pkg in flavour.packages:
                if pkg.kind == "rpm":
                    path, sha = rpms.fetch_rpm(pkg, store, index, work)
                    rpms_found[path.name] = (pkg, path, sha)
            for req in flavour.resolve:
                if req.kind == "rpm":
                    closure = rpms.resolve_rpm_closure(
                        req, manifest.sources, flavour.rpm_arch, store, work
                    )
                    steps.info(f"{req.label}: {len(closure)} packages")
                    for pkg, path in closure:
                        rpms_found.setdefault(path.name, (pkg, path, pkg.sha256))
        with steps.step("Build the yum repository"):
            repos.build_yum_repo(
                [rpms_found[k][1] for k in sorted(rpms_found)],
                root / archive.YUM_DIR,
                opts.date,
                signer,
            )
            for key in sorted(rpms_found):
                pkg, path, sha = rpms_found[key]
                total += path.stat().st_size
                lock["rpm"].append({"name": pkg.name, "version": pkg.version, "arch": pkg.arch,
                                    "sha256": sha, "file": f"rpm/Packages/{path.name}"})  # fmt: skip
            steps.info(f"{len(rpms_found)} packages")
    return total


def _images(flavour, manifest, store, work, root, lock, steps, stats) -> int:
    if not flavour.images:
        return 0
    total = 0
    local = [i for i in flavour.images if i.build]
    if local and not store.offline:
        with steps.step("Build local images with umoci"):
            oci.init_layout(store.images)
            built = images.build_local_images(
                local, manifest.base_dir, store.images, work, flavour.arch
            )
            for ref, digest in built.items():
                steps.info(f"{ref} {digest}")
    with steps.step("Fetch container images into one OCI layout"):
        layout = root / archive.IMAGES_DIR
        oci.init_layout(layout)
        for img in flavour.images:
            desc = images.fetch_image(img, manifest, store, flavour.arch, work)
            new = oci.copy_image(store.images, img.ref, layout, stats=stats)
            source = desc.get("annotations", {}).get(oci.SOURCE_DIGEST, desc["digest"])
            lock["images"].append(
                {"ref": img.ref, "digest": new["digest"], "source_digest": source}
            )
        total = stats.bytes_copied + stats.bytes_reused
        steps.info(f"{len(flavour.images)} images, {stats.copied} blobs stored, "
                   f"{stats.reused} shared blobs stored once ({stats.bytes_reused} bytes saved)")  # fmt: skip
    return total


def build_kubesalt_wheel(
    project: Path,
    version: str,
    dest: Path,
    digests: dict[str, str] | None = None,
    kubernetes_version: str | None = None,
) -> Path:
    """The kubesalt wheel every node installs into Salt's virtualenv: the run-time package
    ``src/kubesalt`` alone, plus the digests the archive's registry serves (``digests``,
    written as kubesalt.kubeadm.images.ARCHIVE_DIGESTS) so static pods pin them, and the
    Kubernetes release the archive carries (``kubernetes_version``, written as
    ARCHIVE_RELEASE). The lab (``src/kubesalt_lab``) and this build are other top-level
    packages, so they never ship (docs/iso.md)."""
    generated = {}
    if kubernetes_version:
        text = pinned_images.archive_release_text(kubernetes_version)
        generated[pinned_images.ARCHIVE_RELEASE] = text.encode()
    if digests:
        generated[pinned_images.ARCHIVE_DIGESTS] = pinned_images.archive_digests_text(
            digests
        ).encode()
    return pywheel.build_wheel(
        RUNTIME_PACKAGE, version, project / "src" / RUNTIME_PACKAGE, dest,
        requires=list(RUNTIME_REQUIRES), summary="kubesalt installer logic", generated=generated,
    )  # fmt: skip


def _wheels(flavour, manifest, store, work, root, lock, steps, opts) -> int:
    if not flavour.wheels and not flavour.kubesalt_wheel:
        return 0
    total = 0
    source = manifest.sources[flavour.wheel_source]
    with steps.step("Fetch Python wheels"):
        dest = root / archive.WHEELS_DIR
        dest.mkdir()
        if flavour.kubesalt_wheel:
            release = opts.kubernetes_version
            own = build_kubesalt_wheel(
                opts.project, opts.version, dest, archive_digests(lock["images"], release), release
            )
            lock["wheels"].append({"name": RUNTIME_PACKAGE, "version": opts.version,
                                   "sha256": sha256_file(own), "file": f"{archive.WHEELS_DIR}/{own.name}"})  # fmt: skip
        fetched = wheels.fetch_wheels(list(flavour.wheels), flavour, source, store, work)
        for wheel, (path, sha) in zip(flavour.wheels, fetched, strict=True):
            entry = {"name": wheel.name, "version": wheel.version, "sha256": sha}
            if wheel.sdist:
                entry["sdist"] = path.name
                path = wheels.build_sdist(wheel, path, sha, flavour, source, store, work)
                entry["built_sha256"] = sha256_file(path)
            shutil.copyfile(path, dest / path.name)
            entry["file"] = f"{archive.WHEELS_DIR}/{path.name}"
            total += path.stat().st_size
            lock["wheels"].append(entry)
        steps.info(f"{len(flavour.wheels)} distributions")
    return total


def parser(project: Path) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iso/build", description="Build the kubesalt ISO of one flavour."
    )
    p.add_argument(
        "--flavour", required=True, help="flavour defined in the manifest (debian12, el9, lab)"
    )
    p.add_argument(
        "--out", required=True, type=Path, help="output directory (tree, ISO, resolved.yaml)"
    )
    p.add_argument(
        "--from", dest="cache", type=Path, help="offline cache directory to take artifacts from"
    )
    p.add_argument(
        "--fill-cache", action="store_true", help="fetch what --from lacks and store it there"
    )
    p.add_argument("--version", help="product version (default: the kubesalt package version)")
    p.add_argument("--gpg-key", type=Path, help="armored secret key signing the repositories")
    p.add_argument("--manifest", type=Path, default=project / "iso" / "manifest.yaml")
    p.add_argument(
        "--project", type=Path, default=project, help="where salt/, pillar/, scripts/ are"
    )
    p.add_argument("--allow-unpinned", action="store_true",
                   help="accept artifacts without a pinned digest (digest from the upstream index)")  # fmt: skip
    p.add_argument("--no-iso", action="store_true", help="build the tree only, not the ISO")
    p.add_argument(
        "--kubernetes-version",
        default=pinned_images.default_version(),
        help="the Kubernetes release the archive carries (default %(default)s; supported: "
        f"{', '.join(pinned_images.supported_versions())})",
    )
    return p


def main(argv: list[str] | None = None, project: Path | None = None) -> int:
    project = project or Path(__file__).resolve().parents[2]
    args = parser(project).parse_args(argv)
    if args.fill_cache and args.cache is None:
        parser(project).error("--fill-cache needs --from DIR")
    from kubesalt import __version__

    opts = Options(
        manifest=args.manifest, flavour=args.flavour, out=args.out.resolve(), project=args.project.resolve(),
        version=args.version or __version__, cache=args.cache.resolve() if args.cache else None,
        fill_cache=args.fill_cache, gpg_key=args.gpg_key, allow_unpinned=args.allow_unpinned,
        iso=not args.no_iso, kubernetes_version=args.kubernetes_version,
    )  # fmt: skip
    steps = Steps()
    try:
        result = build(opts, steps)
    except UnknownFlavourError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        return 2
    except IsoBuildError as err:
        print(f"\nERROR: {err}", file=sys.stderr)
        return 1
    total = sum(t for _, t in result.timings)
    print(f"Built {result.iso or result.tree} in {total:.1f}s")
    print(
        f"Archive key fingerprint: {result.fingerprint} (give it to the operators, apart from "
        "the ISO: bootstrap.sh --archive-fingerprint, docs/bootstrap.md)"
    )
    return 0
