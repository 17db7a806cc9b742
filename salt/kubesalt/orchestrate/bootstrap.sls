# salt-run state.orchestrate kubesalt.orchestrate.bootstrap (run by bootstrap.sh's last
# phase): the bootstrap node's own minion key accepted, its modules synced, its highstate.
# The phases are data (kubesalt.orchestrate.tables): docs/orchestrations.md.

Run the bootstrap orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: bootstrap
    - saltenv: {{ saltenv | yaml_dquote }}
