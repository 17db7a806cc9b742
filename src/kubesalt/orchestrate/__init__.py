"""The orchestration engine: bootstrap, deploy_node, remove_node, renew_certificates
(docs/orchestrations.md).

- `tables`: each orchestration as data, an ordered list of phases and their steps;
- `options`: the pillar checked (nodes, skip_phases, timeouts) before anything runs;
- `engine`: the executor (lock, order, timing, progress, errors naming phase and node);
- `steps`, `clustersteps`: the step kinds; `rpc`: Salt's LocalClient; `saltssh`;
  `etcdjoin`: the etcd join plan; `minionpillar`: the salt-ssh install's pillar;
- `backend`: the outside world (Salt client, key store, SSH, files, clock).

Nothing here imports Salt: `salt/_states/kubesalt_orchestrate.py` builds the backend.
"""

from kubesalt.orchestrate.model import OrchestrateError, Phase, Step, StepFailed
from kubesalt.orchestrate.options import check_nodes_pillar, check_skip, from_pillar, parse_skip
from kubesalt.orchestrate.tables import ORCHESTRATIONS, phases_of

__all__ = [
    "ORCHESTRATIONS",
    "OrchestrateError",
    "Phase",
    "Step",
    "StepFailed",
    "check_nodes_pillar",
    "check_skip",
    "from_pillar",
    "parse_skip",
    "phases_of",
]
