# The kube-scheduler static pod manifest (kubeadm's /etc/kubernetes/manifests/kube-scheduler.yaml), 0600,
# written atomically, with the kubesalt.io/config-digest annotation over the certificates,
# keys and kubeconfigs it reads: a renewed certificate changes it, and the kubelet restarts
# the pod.
# kubesalt_kubeadm.files('scheduler') lists the files and directories (kubeadm's modes);
# kubesalt_kubeadm.content renders each file when the state runs, after kubesalt.pki issued what it digests.
{%- set scheduler = salt['kubesalt_kubeadm.files']('scheduler') %}
include:
  - kubesalt.pki
  - kubesalt.kubeconfig
{%- for path, mode in scheduler.directories.items() %}

Create the directory {{ path }} for kube-scheduler:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in scheduler.files.items() %}

Write the kube-scheduler static pod manifest {{ path }}:
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
{%- for directory in scheduler.directories %}
      - file: Create the directory {{ directory }} for kube-scheduler
{%- endfor %}
{%- endfor %}
