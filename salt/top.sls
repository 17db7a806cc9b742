# Each role of this node (pillar kubesalt:nodes:<id>:roles, from the inventory) maps to
# kubesalt.roles.<role>; a role the node does not have maps to kubesalt.roles.<role>-absent,
# so removing a role from the inventory undoes it at the next highstate (keepalived, which
# serves the API VIP, goes with the control-plane role). The ca and
# bootstrap roles are never undone by a highstate (their removal is an explicit operation).
{%- set roles = salt['pillar.get']('kubesalt:nodes:' ~ grains['id'] ~ ':roles', []) %}
{{ saltenv }}:
  '*':
    - kubesalt.node
{%- for role in ['bootstrap', 'ca'] %}
{%- if role in roles %}
    - kubesalt.roles.{{ role }}
{%- endif %}
{%- endfor %}
{%- for role in ['etcd', 'control-plane', 'node'] %}
    - kubesalt.roles.{{ role }}{{ '' if role in roles else '-absent' }}
{%- endfor %}
{#- Every role of kubesalt.roles.KUBELET_ROLES runs a kubelet: an etcd-only node's runs its
    etcd static pod (the etcd role's state, which upgrade applies before draining, leaves
    it out). #}
{%- if 'control-plane' in roles or 'etcd' in roles or 'node' in roles %}
    - kubesalt.containerd
    - kubesalt.kubelet
{%- endif %}
    - kubesalt.firewall
    - kubesalt.keepalived{{ '' if 'control-plane' in roles else '.absent' }}
