"""Archive trees for the upgrade tests: what kubesalt.upgrade reads of an archive
(product.txt, manifest.lock.yaml, the kubesalt wheel's data/images.yaml) and the parts
`archive.describe` requires. The wheel is a zip holding images.yaml alone unless a real
one is given (the script tests build it from the project)."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import zipfile

import yaml

from kubesalt.bootstrap import archive as karchive

ROOT = pathlib.Path(__file__).resolve().parents[3]
IMAGES = yaml.safe_load((ROOT / "src/kubesalt/data/images.yaml").read_text())
OLD_KUBERNETES = IMAGES["kubernetesVersion"]  # v1.33.5, the release main pins
OLD_ETCD = IMAGES["images"]["etcd"]["tag"]  # 3.5.21-0


def images_of(kubernetes: str, etcd: str) -> dict:
    """images.yaml of release `kubernetes`: the kube-* images at its tag, etcd at `etcd`."""
    data = yaml.safe_load(yaml.safe_dump(IMAGES))
    data["kubernetesVersion"] = kubernetes
    for name, entry in data["images"].items():
        if name.startswith("kube-") and name != "kube-router":
            entry["tag"] = kubernetes
    data["images"]["etcd"]["tag"] = etcd
    return data


def make_archive(base: pathlib.Path, version: str, kubernetes: str = OLD_KUBERNETES,
                 etcd: str = OLD_ETCD, salt: str = "3008.3", product_extra: str = "",
                 wheel: pathlib.Path | None = None) -> karchive.Archive:  # fmt: skip
    """An archive tree at base/kubesalt-<version>; KUBERNETES_VERSION unless `kubernetes`
    is empty. Returns it as the register lists it."""
    root = base / f"kubesalt-{version}"
    for part in ("salt/top.sls", "pillar/top.sls", "deb/dists/kubesalt/InRelease",
                 karchive.KEYRING, karchive.SUMS_SIGNATURE):  # fmt: skip
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text("")
    (root / "wheels").mkdir()
    name = f"kubesalt-{version}-py3-none-any.whl"
    if wheel is not None:
        shutil.copyfile(wheel, root / "wheels" / name)
    else:
        with zipfile.ZipFile(root / "wheels" / name, "w") as zipped:
            zipped.writestr(
                "kubesalt/data/images.yaml", yaml.safe_dump(images_of(kubernetes, etcd))
            )
    product = f"NAME=kubesalt\nVERSION={version}\nFLAVOUR=debian12\nKUBESALT_WHEEL=wheels/{name}\n"
    if kubernetes:
        product += f"KUBERNETES_VERSION={kubernetes}\n"
    (root / karchive.PRODUCT).write_text(product + product_extra)
    lock = {"wheels": [{"name": "kubesalt", "version": version},
                       {"name": "salt", "version": salt}]}  # fmt: skip
    (root / karchive.LOCK).write_text(yaml.safe_dump(lock))
    sums = "".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root).as_posix()}\n"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in (karchive.SUMS, karchive.SUMS_SIGNATURE)
    )
    (root / karchive.SUMS).write_text(sums)
    return karchive.Archive(str(root), str(root), "directory", "kubesalt", version, "debian12")


def write_register(path: pathlib.Path, archives: list[karchive.Archive], current=None) -> str:
    """The register of `archives`; `current` the version the cluster runs (else the first)."""
    path.write_text(karchive.register_text(archives, current))
    return str(path)
