# The control-plane role was removed from this node: its static pods, kubeconfigs and
# certificates go; the kubelet and its kubelet.conf stay while another role needs them.
include:
  - kubesalt.apiserver.absent
  - kubesalt.controller-manager.absent
  - kubesalt.scheduler.absent
{%- for name in ['/etc/kubernetes/admin.conf', '/etc/kubernetes/super-admin.conf',
                 '/etc/kubernetes/controller-manager.conf', '/etc/kubernetes/scheduler.conf',
                 '/etc/kubernetes/pki/apiserver.crt', '/etc/kubernetes/pki/apiserver.key',
                 '/etc/kubernetes/pki/apiserver-kubelet-client.crt',
                 '/etc/kubernetes/pki/apiserver-kubelet-client.key',
                 '/etc/kubernetes/pki/front-proxy-client.crt',
                 '/etc/kubernetes/pki/front-proxy-client.key',
                 '/etc/kubernetes/pki/apiserver-etcd-client.crt',
                 '/etc/kubernetes/pki/apiserver-etcd-client.key'] %}

Remove {{ name }} of a removed control-plane role:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
    - require:
      - sls: kubesalt.apiserver.absent
      - sls: kubesalt.controller-manager.absent
      - sls: kubesalt.scheduler.absent
{%- endfor %}
