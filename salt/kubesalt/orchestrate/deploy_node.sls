# salt-run state.orchestrate kubesalt.orchestrate.deploy_node pillar='{"node": "cp2"}'
# salt-run state.orchestrate kubesalt.orchestrate.deploy_node pillar='{"nodes": ["cp2", "cp3"]}'
# Adds declared nodes to the cluster (docs/orchestrations.md). The phases are data
# (kubesalt.orchestrate.DEPLOY_PHASES); each acts on all the given nodes at once (etcd
# members join one at a time). Pillar skip_phases lists phases to skip (an unknown name
# stops here, before any change, with the valid names). Each phase is one state named
# after it, failhard: the first failure stops the run and its comment starts "phase NAME:".
# Running it again changes nothing, and says so.
{%- set plan = salt['kubesalt_orchestrate.plan']('deploy_node', pillar) %}
{%- set label = plan.label %}
{%- set ca_minion = salt['pillar.get']('kubesalt:ca:minion') %}
{%- set timeout = salt['pillar.get']('timeout', 120) %}
{%- set state_timeout = salt['pillar.get']('state_timeout', 300) %}
{%- for phase in plan.phases %}
{%- set id = 'Phase ' ~ phase.name ~ ' of deploy_node ' ~ label ~ ': ' ~ phase.description %}
{%- set nodes = phase.nodes %}
{%- if not phase.run %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.skipped:
    - phase: {{ phase.name | yaml_dquote }}
    - why: {{ phase.why | yaml_dquote }}
{%- elif phase.name == 'preflight' %}

{{ ('Phase preflight of deploy_node ' ~ label ~ ': no other orchestration runs') | yaml_dquote }}:
  kubesalt_orchestrate.locked:
    - orchestration: deploy_node
    - nodes: {{ nodes | tojson }}
    - failhard: true

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.node_declared:
    - nodes: {{ nodes | tojson }}
    - wait: 10
    - failhard: true
{%- elif phase.name == 'minion' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.minion_installed:
    - nodes: {{ nodes | tojson }}
    - saltenv: {{ saltenv | yaml_dquote }}
    - timeout: 900
    - failhard: true
{%- elif phase.name == 'key' %}
{%- for node in nodes %}

{{ ('Phase key of deploy_node ' ~ label ~ ': accept the key of ' ~ node) | yaml_dquote }}:
  kubesalt_salt_key.accepted:
    - name: {{ node | yaml_dquote }}
    - public_key: /etc/kubesalt/minion-keys/{{ node }}.pub
    - wait: 90
    - failhard: true

{{ ('Phase key of deploy_node ' ~ label ~ ': ' ~ node ~ ' answers test.ping') | yaml_dquote }}:
  kubesalt_salt_key.responds:
    - name: {{ node | yaml_dquote }}
    - wait: 90
    - failhard: true
{%- endfor %}
{%- elif phase.name == 'grains' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.grains_published:
    - nodes: {{ nodes | tojson }}
    - saltenv: {{ saltenv | yaml_dquote }}
    - ca_minion: {{ ca_minion | yaml_dquote }}
    - failhard: true
{%- elif phase.name == 'firewall' %}

{{ (id ~ ' (other nodes)') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - scope: others
    - sls: [kubesalt.firewall]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: firewall
    - failhard: true

{{ (id ~ ' (' ~ label ~ ')') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - sls: [kubesalt.firewall]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: firewall
    - failhard: true
    - reconnect: true
{%- elif phase.name == 'certs' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - sls: [kubesalt.pki]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: certs
    - timeout: {{ state_timeout }}
    - failhard: true
{%- elif phase.name == 'etcd' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.etcd_joined:
    - nodes: {{ nodes | tojson }}
    - member: {{ ca_minion | yaml_dquote }}
    - saltenv: {{ saltenv | yaml_dquote }}
    - timeout: {{ timeout }}
    - failhard: true
{%- elif phase.name == 'control-plane' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - sls: [kubesalt.roles.control-plane]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: control-plane
    - failhard: true
{%- elif phase.name == 'keepalived' %}

{{ (id ~ ' (existing control-plane nodes)') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ plan.nodes | tojson }}
    - scope: others
    - roles: [control-plane]
    - sls: [kubesalt.keepalived]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: keepalived
    - failhard: true

{{ (id ~ ' (' ~ nodes | join(', ') ~ ')') | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - sls: [kubesalt.keepalived]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: keepalived
    - failhard: true
{%- elif phase.name == 'kubelet' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - sls: [kubesalt.roles.node]
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: kubelet
    - failhard: true
{%- elif phase.name == 'wait-control-plane' %}
{%- set ips = salt['mine.get'](nodes | join(','), 'control_plane_ip', tgt_type='list') %}
{%- for node in nodes %}

{{ (id ~ ' (' ~ node ~ ')') | yaml_dquote }}:
  http.wait_for_successful_query:
    - name: {{ ('https://' ~ ips.get(node, '') ~ ':' ~ salt['pillar.get']('kubesalt:apiServer:port', 6443) ~ '/readyz') | yaml_dquote }}
    - verify_ssl: false
    - status: 200
    - wait_for: 300
    - request_interval: 5
    - failhard: true
{%- endfor %}
{%- elif phase.name == 'addons' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.node_labelled:
    - nodes: {{ nodes | tojson }}
    - member: {{ ca_minion | yaml_dquote }}
    - roles: {{ plan.roles | tojson }}
    - failhard: true
{%- elif phase.name == 'highstate' %}

{{ id | yaml_dquote }}:
  kubesalt_orchestrate.applied:
    - nodes: {{ nodes | tojson }}
    - saltenv: {{ saltenv | yaml_dquote }}
    - phase: highstate
    - failhard: true
{%- endif %}
{%- endfor %}

{{ ('deploy_node ' ~ label ~ ' is over: release the orchestration lock') | yaml_dquote }}:
  kubesalt_orchestrate.unlocked
