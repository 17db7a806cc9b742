# The node role was removed from this node. When no remaining role runs a kubelet
# (control-plane and etcd nodes run one for their static pods), the kubelet and containerd
# stop and every other file the renderer gave the node role goes (kubesalt_kubeadm.role_files:
# kubelet.conf and its client certificate, the cluster CA certificate).
{%- set files = salt['kubesalt_kubeadm.role_files']('node', ['kubeconfig', 'pki']) %}
{%- set kubelet = salt['kubesalt_kubeadm.role_files']('node', ['kubelet', 'containerd']) %}
{%- if not kubelet %}

Keep the kubelet and containerd for the remaining roles:
  test.succeed_without_changes:
    - name: "the remaining roles of this node still run a kubelet"
{%- else %}
include:
  - kubesalt.kubelet.absent
  - kubesalt.containerd.absent
{%- for path in files %}

Remove {{ path }} of a removed node role:
  file.absent:
    - name: {{ path | yaml_dquote }}
    - require:
      - sls: kubesalt.kubelet.absent
{%- endfor %}
{%- endif %}
