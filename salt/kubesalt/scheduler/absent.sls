# Undo kubesalt.scheduler on this node: the static pod of kube-scheduler; the kubelet stops it.
{%- for name in ['/etc/kubernetes/manifests/kube-scheduler.yaml'] %}

Remove the kube-scheduler static pod manifest {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- endfor %}
