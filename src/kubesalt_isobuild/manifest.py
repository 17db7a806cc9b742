"""The artifact manifest: loading and validation.

The manifest (``iso/manifest.yaml``) declares *sources* (apt and yum repositories, container
registries, Python package indexes) and *flavours*. A flavour lists what goes into one ISO:
pinned packages, package sets whose dependency closure is resolved at build time, container
images (pinned by digest, or built locally from ``images/``) and Python wheels. Every problem
is reported at once, each with its path in the manifest, the bad value and what is expected.

The sources and packages are those of the default Kubernetes release (the default of
``kubesalt/data/images.yaml``). ``kubernetes_releases`` says what changes for another one:
per release, source fields replaced by name and, per flavour, packages replaced by name
(``for_kubernetes_release``); ``iso/build --kubernetes-version`` applies it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kubesalt_isobuild.errors import ManifestError
from kubesalt_isobuild.model import (
    DEB_ARCHES,
    Flavour,
    Image,
    Manifest,
    Package,
    Python,
    Resolve,
    Source,
    Wheel,
)

__all__ = ["Flavour", "Image", "Manifest", "Package", "Python", "Resolve", "Source", "Wheel"]

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
FLAVOUR_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
IMAGE_NAME_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SOURCE_TYPES = ("apt", "yum", "registry", "pypi")


class _Checker:
    """Collects problems, each with its path in the manifest."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, required: bool = True) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, got {type(value).__name__} {value!r}")
            return {}
        return value

    def seq(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, f"must be a list, got {type(value).__name__} {value!r}")
            return []
        return value

    def string(self, data: dict, key: str, path: str, required: bool = True, regex=None, hint=""):
        value = data.get(key)
        if value is None:
            if required:
                self.add(f"{path}.{key}", f"is required{'; ' + hint if hint else ''}")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # versions such as 3.10 written unquoted
        if not isinstance(value, str) or not value:
            self.add(f"{path}.{key}", f"must be a non-empty string, got {value!r}")
            return None
        if regex is not None and not regex.match(value):
            self.add(f"{path}.{key}", f"{value!r} is not valid{'; ' + hint if hint else ''}")
            return None
        return value

    def unknown(self, data: dict, allowed: set[str], path: str) -> None:
        for key in sorted(set(data) - allowed):
            self.add(f"{path}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _sha256(c: _Checker, data: dict, path: str) -> str | None:
    value = data.get("sha256")
    if value is None:
        if "sha256" not in data:
            c.add(f"{path}.sha256", "is required (write null to resolve it at build time)")
        return None
    if not isinstance(value, str) or not SHA256_RE.match(value):
        c.add(f"{path}.sha256", f"{value!r} is not a sha256 (64 lowercase hex digits) or null")
        return None
    return value


def _source(c: _Checker, name: str, data: Any) -> Source | None:
    path = f"sources.{name}"
    data = c.mapping(data, path)
    if not data:
        return None
    typ = data.get("type")
    if typ not in SOURCE_TYPES:
        c.add(f"{path}.type", f"{typ!r} is not one of {', '.join(SOURCE_TYPES)}")
        return None
    allowed = {"type", "url", "cafile", "description"}
    if typ in ("apt", "yum"):
        allowed.add("keyring")
        kwargs_keyring = data.get("keyring")
    else:
        kwargs_keyring = None
    url = c.string(data, "url", path, hint="the base URL (host[:port] for a registry)")
    kwargs: dict[str, Any] = {}
    if typ == "apt":
        allowed |= {"suite", "components"}
        suite = c.string(data, "suite", path, hint="a suite such as bookworm, or / for a flat repo")
        comps = c.seq(data.get("components"), f"{path}.components")
        if suite and not suite.endswith("/") and not comps:
            c.add(f"{path}.components", "is required for a non-flat repository (e.g. [main])")
        kwargs.update(suite=suite or "", components=tuple(str(x) for x in comps))
    elif typ == "registry":
        allowed |= {"host", "tls_verify"}
        host = c.string(
            data, "host", path, hint="the canonical registry name, e.g. registry.k8s.io"
        )
        tls = data.get("tls_verify", True)
        if not isinstance(tls, bool):
            c.add(f"{path}.tls_verify", f"must be true or false, got {tls!r}")
            tls = True
        kwargs.update(host=host or "", tls_verify=tls)
    c.unknown(data, allowed, path)
    return Source(
        name=name,
        type=typ,
        url=url or "",
        cafile=data.get("cafile"),
        keyring=kwargs_keyring,
        **kwargs,
    )


def _packages(c: _Checker, items: list, path: str, sources: dict[str, Source]) -> list[Package]:
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        data = c.mapping(raw, p)
        if not data:
            continue
        c.unknown(data, {"name", "version", "arch", "sha256", "source"}, p)
        name = c.string(data, "name", p, regex=NAME_RE)
        version = c.string(data, "version", p)
        arch = c.string(data, "arch", p, hint="amd64/all for deb, x86_64/noarch for rpm")
        sha = _sha256(c, data, p)
        src = c.string(data, "source", p)
        kind = None
        if src is not None:
            if src not in sources or sources[src].type not in ("apt", "yum"):
                pkg_sources = sorted(n for n, s in sources.items() if s.type in ("apt", "yum"))
                c.add(f"{p}.source", f"{src!r} is not an apt or yum source; known: {pkg_sources}")
            else:
                kind = "deb" if sources[src].type == "apt" else "rpm"
        if name and version and arch and src and kind:
            out.append(Package(kind, name, version, arch, sha, src))
    return out


def _resolves(c: _Checker, items: list, path: str, sources: dict[str, Source]) -> list[Resolve]:
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        data = c.mapping(raw, p)
        if not data:
            continue
        c.unknown(data, {"sources", "roots", "release"}, p)
        srcs = [str(s) for s in c.seq(data.get("sources"), f"{p}.sources")]
        roots = [str(r) for r in c.seq(data.get("roots"), f"{p}.roots")]
        if not srcs:
            c.add(f"{p}.sources", "is required: the repositories to resolve from")
        if not roots:
            c.add(f"{p}.roots", "is required: the packages whose closure goes into the ISO")
        types = set()
        for s in srcs:
            if s not in sources or sources[s].type not in ("apt", "yum"):
                c.add(f"{p}.sources", f"{s!r} is not an apt or yum source")
            else:
                types.add(sources[s].type)
        if len(types) > 1:
            c.add(f"{p}.sources", "mixes apt and yum sources; use one resolve entry per family")
        release = str(data.get("release", ""))
        if types == {"yum"} and not release:
            c.add(f"{p}.release", "is required for yum sources (the $releasever, e.g. 9)")
        if srcs and roots and len(types) == 1:
            kind = "deb" if types == {"apt"} else "rpm"
            out.append(Resolve(kind, tuple(srcs), tuple(roots), release))
    return out


def _images(c: _Checker, items: list, path: str, base: Path) -> list[Image]:
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        data = c.mapping(raw, p)
        if not data:
            continue
        c.unknown(data, {"name", "tag", "digest", "build"}, p)
        name = c.string(
            data,
            "name",
            p,
            regex=IMAGE_NAME_RE,
            hint="a canonical name such as registry.k8s.io/pause",
        )
        tag = c.string(data, "tag", p, regex=TAG_RE)
        digest = data.get("digest")
        build = data.get("build")
        if "digest" not in data:
            c.add(f"{p}.digest", "is required (sha256:<64 hex>, or null to accept any)")
        elif digest is not None and (not isinstance(digest, str) or not DIGEST_RE.match(digest)):
            c.add(f"{p}.digest", f"{digest!r} is not sha256:<64 hex digits> or null")
            digest = None
        if build is not None and not (base / str(build) / "image.yaml").is_file():
            c.add(f"{p}.build", f"{build!r}: no image.yaml in {base / str(build)}")
            build = None
        if name and tag:
            out.append(Image(name, tag, digest, str(build) if build else None))
    return out


def _wheels(c: _Checker, items: list, path: str) -> list[Wheel]:
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        data = c.mapping(raw, p)
        if not data:
            continue
        c.unknown(data, {"name", "version", "sha256", "sdist"}, p)
        name = c.string(data, "name", p, regex=NAME_RE)
        version = c.string(data, "version", p)
        sha = _sha256(c, data, p)
        sdist = data.get("sdist", False)
        if not isinstance(sdist, bool):
            c.add(f"{p}.sdist", f"must be true or false, got {sdist!r}")
            sdist = False
        if name and version:
            out.append(Wheel(name, version, sha, sdist))
    return out


def _flavour(c: _Checker, name: str, data: Any, sources: dict[str, Source], base: Path):
    path = f"flavours.{name}"
    if not FLAVOUR_RE.match(name):
        c.add(path, "flavour names are lowercase letters, digits and dashes")
    data = c.mapping(data, path)
    if not data:
        return None
    allowed = {"description", "arch", "packages", "resolve", "images", "kubernetes_images"}
    c.unknown(data, allowed | {"wheels", "wheel_source", "python", "kubesalt_wheel"}, path)
    arch = c.string(data, "arch", path, hint="the Debian architecture name, e.g. amd64") or "amd64"
    if arch not in DEB_ARCHES:
        c.add(f"{path}.arch", f"{arch!r} is not one of {', '.join(DEB_ARCHES)}")
    packages = _packages(
        c, c.seq(data.get("packages"), f"{path}.packages"), path + ".packages", sources
    )
    resolve = _resolves(
        c, c.seq(data.get("resolve"), f"{path}.resolve"), path + ".resolve", sources
    )
    images = _images(c, c.seq(data.get("images"), f"{path}.images"), path + ".images", base)
    kube = data.get("kubernetes_images", False)
    if not isinstance(kube, bool):
        c.add(f"{path}.kubernetes_images", f"must be true or false, got {kube!r}")
        kube = False
    own = data.get("kubesalt_wheel", False)
    if not isinstance(own, bool):
        c.add(f"{path}.kubesalt_wheel", f"must be true or false, got {own!r}")
        own = False
    wheels = _wheels(c, c.seq(data.get("wheels"), f"{path}.wheels"), path + ".wheels")
    wsrc = data.get("wheel_source")
    if (wheels or own) and (wsrc not in sources or sources[wsrc].type != "pypi"):
        pypi = sorted(n for n, s in sources.items() if s.type == "pypi")
        c.add(f"{path}.wheel_source", f"{wsrc!r} is not a pypi source; known: {pypi}")
    py = c.mapping(data.get("python"), f"{path}.python", required=False)
    c.unknown(py, {"version", "platforms", "implementation"}, f"{path}.python")
    python = Python(
        version=str(py.get("version", "3.11")),
        platforms=tuple(str(x) for x in c.seq(py.get("platforms"), f"{path}.python.platforms"))
        or Python.platforms,
        implementation=str(py.get("implementation", "cp")),
    )
    seen: dict[str, str] = {}
    for img in images:
        if img.ref in seen:
            c.add(f"{path}.images", f"{img.ref} is listed twice")
        seen[img.ref] = img.ref
    return Flavour(
        name=name,
        description=str(data.get("description", "")),
        arch=arch,
        packages=tuple(packages),
        resolve=tuple(resolve),
        images=tuple(images),
        kubernetes_images=kube,
        wheels=tuple(wheels),
        wheel_source=wsrc,
        kubesalt_wheel=own,
        python=python,
    )


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Validate already-loaded YAML ``data``; raise :class:`ManifestError` with every problem."""
    c = _Checker()
    data = c.mapping(data, "manifest")
    if data:
        extensions = {k for k in data if str(k).startswith("x-")}  # YAML anchors live there
        top = {"schema", "product", "sources", "flavours", "kubernetes_releases"}
        c.unknown(data, top | extensions, "manifest")
        if data.get("schema") != 1:
            c.add("schema", f"{data.get('schema')!r} is not a supported schema; expected 1")
    sources: dict[str, Source] = {}
    for name, raw in c.mapping(data.get("sources"), "sources", required=False).items():
        src = _source(c, str(name), raw)
        if src is not None:
            sources[str(name)] = src
    flavours: dict[str, Flavour] = {}
    for name, raw in c.mapping(data.get("flavours"), "flavours").items():
        fl = _flavour(c, str(name), raw, sources, path.parent)
        if fl is not None:
            flavours[str(name)] = fl
    if data and not flavours and not c.problems:
        c.add("flavours", "at least one flavour is required")
    if c.problems:
        raise ManifestError(c.problems, str(path))
    product = str(data.get("product", "kubesalt"))
    return Manifest(path=path, product=product, sources=sources, flavours=flavours)


def for_kubernetes_release(data: Any, release: str | None, path: str = "manifest") -> Any:
    """The loaded manifest ``data`` as it is for Kubernetes ``release``: unchanged for None
    (the default release), else with the sources and packages that
    ``kubernetes_releases.<release>`` gives replacing those of the same name."""
    if release is None or not isinstance(data, dict):
        return data
    releases = data.get("kubernetes_releases") or {}
    overlay = releases.get(release) if isinstance(releases, dict) else None
    if not isinstance(overlay, dict):
        known = ", ".join(releases) if isinstance(releases, dict) else "none"
        raise ManifestError(
            [f"kubernetes_releases.{release}: missing; add its sources and packages (known: "
             f"{known or 'none'}), or build the default release"], path)  # fmt: skip
    problems = []
    sources = {name: dict(raw) for name, raw in (data.get("sources") or {}).items()}
    for name, fields in (overlay.get("sources") or {}).items():
        if name not in sources or not isinstance(fields, dict):
            problems.append(f"kubernetes_releases.{release}.sources.{name}: not a source's "
                            f"fields; known sources: {', '.join(sources)}")  # fmt: skip
            continue
        sources[name].update(fields)
    flavours = {name: dict(raw) for name, raw in (data.get("flavours") or {}).items()}
    for name, packages in (overlay.get("packages") or {}).items():
        if name not in flavours:
            problems.append(f"kubernetes_releases.{release}.packages.{name}: no such flavour; "
                            f"known: {', '.join(flavours)}")  # fmt: skip
            continue
        current = list(flavours[name].get("packages") or [])
        names = [p.get("name") for p in current if isinstance(p, dict)]
        for package in packages or []:
            wanted = package.get("name") if isinstance(package, dict) else None
            if wanted not in names:
                problems.append(f"kubernetes_releases.{release}.packages.{name}: {wanted!r} is "
                                f"not a package of the flavour ({', '.join(names)})")  # fmt: skip
                continue
            current[names.index(wanted)] = package
        flavours[name]["packages"] = current
    if problems:
        raise ManifestError(problems, path)
    return {**data, "sources": sources, "flavours": flavours}


def load_manifest(path: str | Path, kubernetes_release: str | None = None) -> Manifest:
    """Load and validate the manifest file at ``path``, for ``kubernetes_release`` (None:
    the default release; see ``for_kubernetes_release``)."""
    path = Path(path).resolve()
    try:
        text = path.read_text()
    except OSError as err:
        raise ManifestError([f"cannot read: {err.strerror}"], str(path)) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ManifestError([f"is not valid YAML: {err}"], str(path)) from err
    return parse_manifest(for_kubernetes_release(data, kubernetes_release, str(path)), path)
