# salt-run state.orchestrate kubesalt.orchestrate.upgrade saltenv=kubesalt-<target version> \
#   pillar='{"kubernetes_version": "v1.34.1"}'
# Run by upgrade.sh once it moved the bootstrap node's Salt to the target archive: every
# other minion to the target Salt tree, then etcd members, control-plane nodes and workers
# one at a time, and the addons, each node's Kubernetes release recorded as it moves
# (docs/upgrade.md). The phases are data (kubesalt.orchestrate.tables):
# docs/orchestrations.md.

Run the upgrade orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: upgrade
    - saltenv: {{ saltenv | yaml_dquote }}
