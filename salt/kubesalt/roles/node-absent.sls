# The node role was removed from this node. The kubelet and containerd go only when no
# remaining role runs a kubelet (control-plane and etcd nodes run one for their static pods).
{%- set roles = salt['pillar.get']('kubesalt:nodes:' ~ grains.id ~ ':roles', []) %}
{%- if 'control-plane' in roles or 'etcd' in roles %}

Keep the kubelet and containerd for the remaining roles:
  test.succeed_without_changes:
    - name: "roles {{ roles | join(', ') }} still run a kubelet"
{%- else %}
include:
  - kubesalt.kubelet.absent
  - kubesalt.containerd.absent
{%- endif %}
