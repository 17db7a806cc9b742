"""Errors of the ISO build. All derive from :class:`kubesalt.errors.KubesaltError`."""

from __future__ import annotations

from kubesalt.errors import KubesaltError


class IsoBuildError(KubesaltError):
    """Base of every error the ISO build raises on purpose."""


class ManifestError(IsoBuildError):
    """The manifest is invalid. Carries every problem found, each with its path."""

    def __init__(self, problems: list[str], path: str = "manifest"):
        self.problems = list(problems)
        self.path = path
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{path} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class UnknownFlavourError(ManifestError):
    """The flavour asked for is not defined in the manifest (a usage error)."""


class ArtifactError(IsoBuildError):
    """An artifact could not be obtained. ``artifact`` names it, ``hint`` says what to do."""

    def __init__(self, artifact: str, message: str, hint: str = ""):
        self.artifact = artifact
        self.hint = hint
        text = f"artifact {artifact}: {message}"
        if hint:
            text += f"\n  what to do: {hint}"
        super().__init__(text)


class MissingArtifactError(ArtifactError):
    """The artifact is neither in the cache nor at its upstream."""


class DigestMismatchError(ArtifactError):
    """The artifact's content does not match its pinned digest."""

    def __init__(self, artifact: str, expected: str, actual: str, where: str):
        self.expected = expected
        self.actual = actual
        super().__init__(
            artifact,
            f"digest mismatch in {where}: expected {expected}, got {actual}",
            "check the pinned digest in the manifest; if the upstream really changed, "
            "review the new artifact and update the pin",
        )


class UnpinnedArtifactError(IsoBuildError):
    """Artifacts without a pinned digest, and the build was not told to accept them."""

    def __init__(self, artifacts: list[str]):
        self.artifacts = list(artifacts)
        names = "\n".join(f"  - {a}" for a in self.artifacts)
        super().__init__(
            f"{len(self.artifacts)} artifact(s) have no pinned digest:\n{names}\n"
            "  what to do: pin them in the manifest, or build once online with "
            "--allow-unpinned and copy the digests from <out>/resolved.yaml into the manifest"
        )


class ToolError(IsoBuildError):
    """An external program failed."""

    def __init__(self, cmd: list[str], returncode: int, output: str, what: str = ""):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.output = output
        head = f"{what}: " if what else ""
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"{head}`{' '.join(cmd)}` exited with {returncode}\n{tail}")
