# Undo kubesalt.apiserver on this node: the static pod of kube-apiserver; the kubelet stops it.
{%- for name in ['/etc/kubernetes/manifests/kube-apiserver.yaml'] %}

Remove the kube-apiserver static pod manifest {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- endfor %}
