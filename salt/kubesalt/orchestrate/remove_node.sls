# salt-run state.orchestrate kubesalt.orchestrate.remove_node pillar='{"node": "cp3"}'
# The inverse of deploy_node (docs/orchestrations.md): the Node object drained, the etcd
# member removed (refused for the last member, and when quorum would break unless pillar
# force: true), the node's kubesalt files removed (the -absent states; its etcd data too
# once its member is gone, so it can be deployed again), the Node object deleted, its
# minion stopped, its key deleted, the node forgotten, then keepalived peers and firewall
# sources updated on every other node (computed from the inventory and the mine, which no
# longer list it).
{%- set plan = salt['kubesalt_orchestrate.plan']('remove_node', pillar) %}
{%- set node = plan.label %}
{%- set etcd_left = (plan.phases | selectattr('name', 'equalto', 'etcd') | first).run %}
{%- set ca_minion = salt['pillar.get']('kubesalt:ca:minion') %}
{%- for phase in plan.phases %}
{%- set id = 'Phase ' ~ phase.name ~ ' of remove_node ' ~ node ~ ': ' ~ phase.description %}
{%- if not phase.run %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.skipped:
    - phase: {{ phase.name | yaml_dquote }}
    - why: {{ phase.why | yaml_dquote }}
{%- elif phase.name == 'preflight' %}

{{ ('Phase preflight of remove_node ' ~ node ~ ': no other orchestration runs') | yaml_dquote }}:
  kubesalt_orchestrate.locked:
    - orchestration: remove_node
    - nodes: {{ plan.nodes | tojson }}
    - failhard: true

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.node_declared:
    - nodes: {{ plan.nodes | tojson }}
    - wait: 10
    - failhard: true
{%- if node == ca_minion %}

{{ ('Phase preflight of remove_node ' ~ node ~ ': refuse to remove the CA and bootstrap node') | yaml_dquote }}:
  test.fail_without_changes:
    - name: {{ ('phase preflight: ' ~ node ~ ' is the CA minion and the bootstrap node (ca.minion); it cannot be removed with remove_node') | yaml_dquote }}
    - failhard: true
{%- endif %}
{%- elif phase.name == 'drain' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.node_drained:
    - node: {{ node | yaml_dquote }}
    - member: {{ ca_minion | yaml_dquote }}
    - timeout: {{ salt['pillar.get']('drain_timeout', 300) }}
    - failhard: true
{%- elif phase.name == 'etcd' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.etcd_left:
    - node: {{ node | yaml_dquote }}
    - member: {{ ca_minion | yaml_dquote }}
    - force: {{ plan.force }}
    - failhard: true
{%- elif phase.name == 'cleanup' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ plan.nodes | tojson }}
    - sls:
      - kubesalt.keepalived.absent
      - kubesalt.roles.etcd-absent
{%- if etcd_left %}
      - kubesalt.etcd.data-absent
{%- endif %}
      - kubesalt.roles.control-plane-absent
      - kubesalt.kubelet.absent
      - kubesalt.containerd.absent
      - kubesalt.kubeconfig.absent
      - kubesalt.pki.absent
      - kubesalt.firewall.absent
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: cleanup
    - failhard: true
{%- elif phase.name == 'delete-node' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.node_deleted:
    - node: {{ node | yaml_dquote }}
    - member: {{ ca_minion | yaml_dquote }}
    - failhard: true
{%- elif phase.name == 'minion' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.minion_stopped:
    - node: {{ node | yaml_dquote }}
    - failhard: true
{%- elif phase.name == 'key' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.key_absent:
    - node: {{ node | yaml_dquote }}
    - failhard: true
{%- elif phase.name == 'inventory' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.forgotten:
    - node: {{ node | yaml_dquote }}
    - failhard: true
{%- elif phase.name == 'peers' %}

{{ (id ~ ' (CA minion pillar)') | yaml_dquote }}:
  kubesalt_orchestrate.pillar_refreshed:
    - minion: {{ ca_minion | yaml_dquote }}
    - phase: peers
    - failhard: true

{{ (id ~ ' (keepalived)') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ plan.nodes | tojson }}
    - scope: others
    - roles: [control-plane]
    - sls: [kubesalt.keepalived]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: peers
    - failhard: true

{{ (id ~ ' (firewall)') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ plan.nodes | tojson }}
    - scope: others
    - sls: [kubesalt.firewall]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: peers
    - failhard: true
{%- endif %}
{%- endfor %}

{{ ('remove_node ' ~ node ~ ' is over: release the orchestration lock') | yaml_dquote }}:
  kubesalt_orchestrate.unlocked
