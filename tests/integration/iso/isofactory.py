"""Small local artifacts for ISO build tests: DEBs, RPMs, wheels, images, and a manifest.

Used by the integration tests and by the ISO benchmark. Everything is made in a temporary
directory from nothing but the programs the ISO build itself needs.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubesalt_isobuild import oci
from kubesalt_isobuild.debs import deb_filename
from kubesalt_isobuild.images import build_local_images
from kubesalt_isobuild.manifest import Image
from kubesalt_isobuild.pywheel import build_wheel
from kubesalt_isobuild.util import sha256_file

DEBS = (("ks-dep", "1.0-1", []), ("ks-hello", "2:1.2-3", ["ks-dep (>= 1.0)"]))
RPMS = (("ks-dep", "1.0", "1", []), ("ks-hello", "1.2", "3", ["ks-dep >= 1.0"]))
WHEELS = (("ks-alpha", "0.1.0"), ("ks_beta", "2.0"))
IMAGES = (("kubesalt.test/base", "1", "base"), ("kubesalt.test/tools/app", "0.1", "app"))


def sh(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd).stdout


@dataclass
class Artifacts:
    root: Path
    debs: dict[str, Path] = field(default_factory=dict)
    rpms: dict[str, Path] = field(default_factory=dict)
    wheels: dict[str, Path] = field(default_factory=dict)
    layout: Path | None = None  # OCI layout holding IMAGES under their canonical refs
    image_digests: dict[str, str] = field(default_factory=dict)
    image_defs: Path | None = None


def make_deb(work: Path, name: str, version: str, depends: list[str]) -> Path:
    pkg = work / f"debsrc-{name}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr/share/ks" / name).mkdir(parents=True)
    (pkg / "usr/share/ks" / name / "hello.txt").write_text(f"{name} {version}\n")
    control = {
        "Package": name,
        "Version": version,
        "Architecture": "amd64",
        "Maintainer": "kubesalt tests <tests@localhost>",
        # Multi-line, as real packages have: the repository must keep it valid deb822.
        "Description": f"kubesalt test package {name}\n Its long description\n .\n spans lines.",
    }
    if depends:
        control["Depends"] = ", ".join(depends)
    (pkg / "DEBIAN/control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()))
    out = work / "debs"
    out.mkdir(exist_ok=True)
    dest = out / deb_filename(name, version, "amd64")
    sh("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg), str(dest))
    return dest


def make_rpm(work: Path, name: str, version: str, release: str, requires: list[str]) -> Path:
    top = work / "rpmbuild"
    for sub in ("SPECS", "RPMS", "BUILD", "SOURCES", "SRPMS", "BUILDROOT"):
        (top / sub).mkdir(parents=True, exist_ok=True)
    req = "".join(f"Requires: {r}\n" for r in requires)
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(
        textwrap.dedent(f"""\
        Name: {name}
        Version: {version}
        Release: {release}
        Summary: kubesalt test package {name}
        License: Apache-2.0
        BuildArch: x86_64
        {req}
        %description
        kubesalt test package {name}.

        %install
        mkdir -p %{{buildroot}}/usr/share/ks/{name}
        echo "{name} {version}" > %{{buildroot}}/usr/share/ks/{name}/hello.txt

        %files
        /usr/share/ks/{name}/hello.txt
        """)
    )
    sh("rpmbuild", "--quiet", "--define", f"_topdir {top}", "--define", "_build_id_links none",
       "--define", "__os_install_post %{nil}", "-bb", str(spec))  # fmt: skip
    return next((top / "RPMS" / "x86_64").glob(f"{name}-{version}-{release}.x86_64.rpm"))


def make_image_defs(work: Path) -> Path:
    """Two image definitions; ``app`` is ``base`` plus one layer (the base layer is shared)."""
    defs = work / "imagedefs"
    (defs / "base/rootfs/etc").mkdir(parents=True)
    (defs / "base/rootfs/etc/os-release").write_text("ID=kubesalt-test\n")
    (defs / "base/rootfs/etc/big.bin").write_bytes(bytes(range(256)) * 64)
    (defs / "base/image.yaml").write_text("rootfs: rootfs\n")
    (defs / "app/rootfs/app").mkdir(parents=True)
    (defs / "app/rootfs/app/hello.txt").write_text("hello\n")
    (defs / "app/image.yaml").write_text(
        "from: ../base\nrootfs: rootfs\nconfig:\n  entrypoint: [/app/hello.txt]\n"
    )
    return defs


def make_artifacts(root: Path) -> Artifacts:
    root.mkdir(parents=True, exist_ok=True)
    art = Artifacts(root)
    for name, version, deps in DEBS:
        art.debs[name] = make_deb(root, name, version, deps)
    for name, version, release, reqs in RPMS:
        art.rpms[name] = make_rpm(root, name, version, release, reqs)
    for name, version in WHEELS:
        pkg = root / "wheelsrc" / name / name.replace("-", "_")
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f'VERSION = "{version}"\n')
        art.wheels[name] = build_wheel(name, version, pkg, root / "wheels")
    art.image_defs = make_image_defs(root)
    art.layout = root / "layout"
    oci.init_layout(art.layout)
    imgs = [Image(n, t, None, d) for n, t, d in IMAGES]
    art.image_digests = build_local_images(imgs, art.image_defs, art.layout, root)
    return art


def fill_cache(art: Artifacts, cache: Path) -> None:
    """Put every artifact into an offline cache directory (``iso/build --from``)."""
    for kind, files in (("deb", art.debs), ("rpm", art.rpms), ("wheels", art.wheels)):
        (cache / kind).mkdir(parents=True, exist_ok=True)
        for path in files.values():
            shutil.copyfile(path, cache / kind / path.name)
    for ref, _digest in art.image_digests.items():
        oci.copy_image(art.layout, ref, cache / "images")


def manifest_data(
    art: Artifacts, sources: dict | None = None, images_from_build: bool = False
) -> dict:
    """A manifest with one flavour, ``test``, pinning every artifact of ``art``."""
    sources = sources or {
        "apt-upstream": {"type": "apt", "url": "http://127.0.0.1:9/apt", "suite": "stable",
                         "components": ["main"]},
        "yum-upstream": {"type": "yum", "url": "http://127.0.0.1:9/yum"},
        "pypi-upstream": {"type": "pypi", "url": "http://127.0.0.1:9/simple"},
        # Every pulled image's registry is a source (the build refuses one that is not);
        # these images come from the offline cache, never from this address.
        "registry-upstream": {"type": "registry", "host": "kubesalt.test", "url": "127.0.0.1:9",
                              "tls_verify": False},
    }  # fmt: skip
    apt = next(n for n, s in sources.items() if s["type"] == "apt")
    yum = next(n for n, s in sources.items() if s["type"] == "yum")
    pypi = next(n for n, s in sources.items() if s["type"] == "pypi")
    packages = [
        {"name": n, "version": v, "arch": "amd64", "sha256": sha256_file(art.debs[n]), "source": apt}
        for n, v, _ in DEBS
    ] + [
        {"name": n, "version": f"{v}-{r}", "arch": "x86_64", "sha256": sha256_file(art.rpms[n]),
         "source": yum}
        for n, v, r, _ in RPMS
    ]  # fmt: skip
    images = []
    for name, tag, defname in IMAGES:
        entry = {"name": name, "tag": tag, "digest": art.image_digests[f"{name}:{tag}"]}
        if images_from_build:
            entry["build"] = str(art.image_defs / defname)
        images.append(entry)
    wheels = [{"name": n, "version": v, "sha256": sha256_file(art.wheels[n])} for n, v in WHEELS]
    return {
        "schema": 1,
        "product": "kubesalt",
        "sources": sources,
        "flavours": {
            "test": {
                "description": "small local artifacts",
                "arch": "amd64",
                "packages": packages,
                "images": images,
                "wheel_source": pypi,
                "python": {"version": "3.11", "platforms": ["any"]},
                "wheels": wheels,
            }
        },
    }


def write_manifest(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_project(root: Path) -> Path:
    """A project directory with small salt/, pillar/ and scripts/ (with bootstrap.sh)."""
    (root / "salt/kubesalt/node").mkdir(parents=True)
    (root / "salt/top.sls").write_text("base:\n  '*': []\n")
    (root / "salt/kubesalt/node/init.sls").write_text("{}\n")
    (root / "pillar").mkdir()
    (root / "pillar/top.sls").write_text("base: {}\n")
    (root / "scripts").mkdir()
    (root / "scripts/bootstrap.sh").write_text("#!/bin/sh\necho bootstrap\n")
    (root / "src/kubesalt").mkdir(parents=True)
    (root / "src/kubesalt/__init__.py").write_text('__version__ = "9.9"\n')
    return root
