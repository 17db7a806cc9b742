# salt-run state.orchestrate kubesalt.orchestrate.remove_node pillar='{"node": "cp3"}'
# The inverse of deploy_node. The phases are data (kubesalt.orchestrate.tables), run by
# one engine: docs/orchestrations.md.

Run the remove_node orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: remove_node
    - saltenv: {{ saltenv | yaml_dquote }}
