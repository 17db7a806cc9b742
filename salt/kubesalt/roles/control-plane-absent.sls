# The control-plane role was removed from this node: every file the renderer gives it for
# that role goes (kubesalt_kubeadm.role_files), the static pods first so that the kubelet
# stops them before their certificates and kubeconfigs are removed. What a remaining role
# still needs (the kubelet, kubelet.conf, the etcd member's files) stays.
{%- for path in salt['kubesalt_kubeadm.role_files']('control-plane') %}

Remove {{ path }} of a removed control-plane role:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- endfor %}
