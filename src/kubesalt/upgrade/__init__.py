"""Upgrade and downgrade between registered archives (docs/upgrade.md).

`archives` reads what an archive carries (kubesalt, Kubernetes, etcd, Salt) and picks the
target archive; `facts` gathers the cluster's state on the bootstrap node through Salt;
`plan` turns both into the versions from -> to, the ordered stages and the preflight
verdict; `move` moves the cluster once the verdict allows it (the bootstrap node's Salt,
then the upgrade or downgrade orchestration of kubesalt.orchestrate, which takes the
stages in the plan's order); `cli` is `upgrade.sh` / `downgrade.sh`.
"""

from kubesalt.errors import KubesaltError


class UpgradeError(KubesaltError):
    """An archive or a fact the plan needs cannot be read; the message says which and why."""
