# Undo kubesalt.controller-manager on this node: the static pod of kube-controller-manager; the kubelet stops it.
{%- for name in ['/etc/kubernetes/manifests/kube-controller-manager.yaml'] %}

Remove the kube-controller-manager static pod manifest {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- endfor %}
