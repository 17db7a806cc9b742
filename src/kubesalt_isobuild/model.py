"""The data model of the artifact manifest (see :mod:`kubesalt_isobuild.manifest`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubesalt_isobuild.errors import UnknownFlavourError

DEB_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Source:
    name: str
    type: str
    url: str = ""
    suite: str = ""
    components: tuple[str, ...] = ()
    keyring: str | None = None
    host: str = ""
    tls_verify: bool = True
    cafile: str | None = None

    @property
    def flat(self) -> bool:
        """A flat apt repository (``deb URL /``), such as pkgs.k8s.io."""
        return self.type == "apt" and self.suite.endswith("/")


@dataclass(frozen=True)
class Package:
    """One OS package pinned by name, version, architecture and sha256 of its file."""

    kind: str  # deb | rpm
    name: str
    version: str
    arch: str
    sha256: str | None
    source: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} {self.version} ({self.arch})"


@dataclass(frozen=True)
class Resolve:
    """Root packages whose full dependency closure is resolved at build time."""

    kind: str  # deb | rpm
    sources: tuple[str, ...]
    roots: tuple[str, ...]
    release: str = ""  # yum: the $releasever given to dnf

    @property
    def label(self) -> str:
        return f"{self.kind} closure of {', '.join(self.roots)}"


@dataclass(frozen=True)
class Image:
    name: str  # canonical repository, e.g. registry.k8s.io/pause
    tag: str
    digest: str | None
    build: str | None = None  # images/<name> directory, relative to the project

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def registry(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def label(self) -> str:
        return f"image {self.ref}"


@dataclass(frozen=True)
class Wheel:
    """A Python distribution: a wheel, or an sdist the build turns into a wheel."""

    name: str
    version: str
    sha256: str | None
    sdist: bool = False

    @property
    def label(self) -> str:
        kind = "sdist" if self.sdist else "wheel"
        return f"{kind} {self.name}=={self.version}"


@dataclass(frozen=True)
class Python:
    version: str = "3.11"
    platforms: tuple[str, ...] = ("manylinux2014_x86_64",)
    implementation: str = "cp"


@dataclass(frozen=True)
class Flavour:
    name: str
    description: str
    arch: str
    packages: tuple[Package, ...] = ()
    resolve: tuple[Resolve, ...] = ()
    images: tuple[Image, ...] = ()
    kubernetes_images: bool = False
    wheels: tuple[Wheel, ...] = ()
    wheel_source: str | None = None
    kubesalt_wheel: bool = False
    python: Python = field(default_factory=Python)

    @property
    def rpm_arch(self) -> str:
        return DEB_ARCHES.get(self.arch, self.arch)

    def kinds(self) -> set[str]:
        return {p.kind for p in self.packages} | {r.kind for r in self.resolve}


@dataclass(frozen=True)
class Manifest:
    path: Path
    product: str
    sources: dict[str, Source]
    flavours: dict[str, Flavour]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def flavour(self, name: str) -> Flavour:
        if name not in self.flavours:
            known = ", ".join(sorted(self.flavours)) or "none"
            raise UnknownFlavourError(
                [f"flavour {name!r} is not defined; defined: {known}"], str(self.path)
            )
        return self.flavours[name]

    def registry_for(self, host: str) -> Source | None:
        for src in self.sources.values():
            if src.type == "registry" and src.host == host:
                return src
        return None
