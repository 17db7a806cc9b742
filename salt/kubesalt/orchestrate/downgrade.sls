# salt-run state.orchestrate kubesalt.orchestrate.downgrade saltenv=kubesalt-<previous version> \
#   pillar='{"kubernetes_version": "v1.33.5"}'
# Run by downgrade.sh once it moved the bootstrap node's Salt back to the previous archive:
# every other minion to that Salt tree, then the addons, the workers, the control-plane
# nodes and the etcd members, one node at a time, each node's Kubernetes release recorded
# as it moves (docs/upgrade.md). The phases are data (kubesalt.orchestrate.tables):
# docs/orchestrations.md.

Run the downgrade orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: downgrade
    - saltenv: {{ saltenv | yaml_dquote }}
