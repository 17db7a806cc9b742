# Undo kubesalt.kubeconfig on this node: the kubeconfigs of /etc/kubernetes.
{%- for name in ['/etc/kubernetes/admin.conf', '/etc/kubernetes/super-admin.conf',
                 '/etc/kubernetes/controller-manager.conf', '/etc/kubernetes/scheduler.conf',
                 '/etc/kubernetes/kubelet.conf'] %}

Remove the kubeconfig {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- endfor %}
