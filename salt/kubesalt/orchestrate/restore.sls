# salt-run state.orchestrate kubesalt.orchestrate.restore (run by bootstrap.sh --restore):
# the bootstrap node restored from a backup onto a fresh machine joins the cluster that
# kept running: the other minions answer the restored master and publish their mine
# again, the node's certificates, its stale etcd member replaced, its highstate.
# The phases are data (kubesalt.orchestrate.tables): docs/orchestrations.md, docs/backup.md.

Run the restore orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: restore
    - saltenv: {{ saltenv | yaml_dquote }}
