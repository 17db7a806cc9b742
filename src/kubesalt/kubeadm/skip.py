"""Node-level skips: the phases a node's states leave out, named in one declared list.

A node lists them in `kubesalt_skip_phases` (a grain, a pillar key or a minion option, read
with `config.get`): the lab, which cannot run containers or Kubernetes binaries, skips
`containerd` and `kubelet`. A name outside the list is an error naming the valid ones, so
a typo (`kublet`) fails the state instead of silently installing what was to be skipped.
"""

from __future__ import annotations

from kubesalt.kubeadm import RenderError

GRAIN = "kubesalt_skip_phases"
# The phases a node may skip, the same names as the orchestration phases that apply them.
NODE_PHASES = ("containerd", "kubelet")


class SkipError(RenderError):
    """A skip list names a phase that cannot be skipped on a node."""


def check(value) -> tuple[str, ...]:
    """The phases of `value` (a list, a comma-separated string, or nothing), all valid."""
    if value in (None, "", [], ()):
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise SkipError(
            f"{GRAIN} = {value!r}: give a list of phase names, for example "
            f"[{', '.join(NODE_PHASES)}]"
        )
    names = [str(item).strip() for item in items if str(item).strip()]
    unknown = [name for name in names if name not in NODE_PHASES]
    if unknown:
        raise SkipError(
            f"{GRAIN}: unknown phase(s) {', '.join(map(repr, unknown))}; the phases a node "
            f"can skip: {', '.join(NODE_PHASES)}"
        )
    return tuple(dict.fromkeys(names))


def skipped(phase: str, value) -> bool:
    """Whether `phase` is in the node's skip list `value` (which is checked whole)."""
    if phase not in NODE_PHASES:
        raise SkipError(
            f"phase {phase!r} cannot be skipped on a node; the phases a node can skip: "
            f"{', '.join(NODE_PHASES)}"
        )
    return phase in check(value)
