# Undo kubesalt.etcd on this node: the static pod of etcd; the kubelet stops it. Its data
# directory, /var/lib/etcd, is kept: remove the member from the cluster first (refused
# while etcd still lists it: kubesalt.etcd.left).
include:
  - kubesalt.etcd.left
{%- for name in ['/etc/kubernetes/manifests/etcd.yaml'] %}

Remove the etcd static pod manifest {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
    - require:
      - sls: kubesalt.etcd.left
{%- endfor %}
