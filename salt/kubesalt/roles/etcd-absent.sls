# The etcd role was removed from this node: stop its etcd member (remove it from the
# cluster first: the remove_node orchestration does) and remove every file the renderer
# gives it for that role (kubesalt_kubeadm.role_files): the static pod first, then etcd's
# certificates. The control plane, which needs a local etcd, goes with it. The data
# directory stays (kubesalt.etcd.data-absent).
{%- for path in salt['kubesalt_kubeadm.role_files']('etcd') %}

Remove {{ path }} of a removed etcd role:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- endfor %}
