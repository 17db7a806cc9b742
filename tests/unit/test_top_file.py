"""The top file: which states a node's highstate applies, from its roles."""

import itertools

import pytest

from kubesalt import roles as _roles
from tests.unit.test_keepalived import render_sls

COMBINATIONS = [
    set(combo)
    for size in range(len(_roles.REMOVABLE_ROLES) + 1)
    for combo in itertools.combinations(_roles.REMOVABLE_ROLES, size)
]


def top_of(roles):
    pillar = {"kubesalt": {"nodes": {"n1": {"roles": sorted(roles)}}}}
    return render_sls("top", pillar, {}, grains={"id": "n1"})["base"]["*"]


@pytest.mark.parametrize("roles", COMBINATIONS, ids=lambda r: ",".join(sorted(r)) or "none")
def test_every_node_whose_roles_run_a_kubelet_gets_containerd_and_the_kubelet(roles):
    states = top_of(roles)
    runs = _roles.runs_kubelet(roles)
    assert ("kubesalt.kubelet" in states) is runs
    assert ("kubesalt.containerd" in states) is runs


def test_an_etcd_only_node_keeps_its_kubelet_and_drops_the_other_roles():
    states = top_of({"etcd"})
    assert states[:4] == ["kubesalt.node", "kubesalt.roles.etcd",
                          "kubesalt.roles.control-plane-absent", "kubesalt.roles.node-absent"]  # fmt: skip
    assert states.index("kubesalt.kubelet") > states.index("kubesalt.roles.etcd")
    assert "kubesalt.keepalived.absent" in states
