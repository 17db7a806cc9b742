# The etcd role was removed from this node: stop its etcd member and remove every file the
# renderer gives it for that role (kubesalt_kubeadm.role_files): the static pod first, then
# etcd's certificates. Refused while etcd still lists this node (kubesalt.etcd.left): the
# remove_node orchestration removes the member from the cluster first. The control plane,
# which needs a local etcd, goes with it. The data directory stays
# (kubesalt.etcd.data-absent).
include:
  - kubesalt.etcd.left
{%- for path in salt['kubesalt_kubeadm.role_files']('etcd') %}

Remove {{ path }} of a removed etcd role:
  file.absent:
    - name: {{ path | yaml_dquote }}
    - require:
      - sls: kubesalt.etcd.left
{%- endfor %}
