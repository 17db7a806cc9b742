# salt-run state.orchestrate kubesalt.orchestrate.deploy_node pillar='{"node": "cp2"}'
# salt-run state.orchestrate kubesalt.orchestrate.deploy_node pillar='{"nodes": ["cp2", "cp3"]}'
# Adds declared nodes to the cluster. The phases are data (kubesalt.orchestrate.tables),
# run by one engine: docs/orchestrations.md.

Run the deploy_node orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: deploy_node
    - saltenv: {{ saltenv | yaml_dquote }}
