# The etcd static pod manifest (kubeadm's /etc/kubernetes/manifests/etcd.yaml), 0600,
# written atomically, with the kubesalt.io/config-digest annotation over the certificates,
# keys and kubeconfigs it reads: a renewed certificate changes it, and the kubelet restarts
# the pod.
# kubesalt_kubeadm.files('etcd') lists the files and directories (kubeadm's modes);
# kubesalt_kubeadm.content renders each file when the state runs, after kubesalt.pki issued what it digests.
{%- set etcd = salt['kubesalt_kubeadm.files']('etcd') %}
include:
  - kubesalt.pki
{%- for path, mode in etcd.directories.items() %}

Create the directory {{ path }} for etcd:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in etcd.files.items() %}

Write the etcd static pod manifest {{ path }}:
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
{%- for directory in etcd.directories %}
      - file: Create the directory {{ directory }} for etcd
{%- endfor %}
{%- endfor %}
