# The kube-controller-manager static pod manifest (kubeadm's /etc/kubernetes/manifests/kube-controller-manager.yaml), 0600,
# written atomically, with the kubesalt.io/config-digest annotation over the certificates,
# keys and kubeconfigs it reads: a renewed certificate changes it, and the kubelet restarts
# the pod.
# kubesalt_kubeadm.files('controller-manager') lists the files and directories (kubeadm's modes);
# kubesalt_kubeadm.content renders each file when the state runs, after kubesalt.pki issued what it digests.
{%- set controller_manager = salt['kubesalt_kubeadm.files']('controller-manager') %}
include:
  - kubesalt.pki
  - kubesalt.kubeconfig
{%- for path, mode in controller_manager.directories.items() %}

Create the directory {{ path }} for kube-controller-manager:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in controller_manager.files.items() %}

Write the kube-controller-manager static pod manifest {{ path }}:
  file.managed:
    - name: {{ path | yaml_dquote }}
    - source: salt://kubesalt/kubeadm/files/rendered.j2
    - template: jinja
    - context:
        path: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - require:
      - sls: kubesalt.pki
      - sls: kubesalt.kubeconfig
{%- for directory in controller_manager.directories %}
      - file: Create the directory {{ directory }} for kube-controller-manager
{%- endfor %}
{%- endfor %}
