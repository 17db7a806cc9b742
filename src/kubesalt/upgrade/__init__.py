"""Upgrade and downgrade between registered archives (docs/upgrade.md).

`archives` reads what an archive carries (kubesalt, Kubernetes, etcd, Salt) and picks the
target archive; `facts` gathers the cluster's state on the bootstrap node through Salt;
`plan` turns both into the versions from -> to, the ordered stages and the preflight
verdict; `cli` is `upgrade.sh` / `downgrade.sh`. The plan's stages hand their ordered
nodes to the upgrade orchestration (to come, on the engine of kubesalt.orchestrate).
"""

from kubesalt.errors import KubesaltError


class UpgradeError(KubesaltError):
    """An archive or a fact the plan needs cannot be read; the message says which and why."""
