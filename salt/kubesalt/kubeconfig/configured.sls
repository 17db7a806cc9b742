# The kubeconfigs kubeadm writes in /etc/kubernetes (admin.conf, super-admin.conf on the first
# control-plane node only, controller-manager.conf, scheduler.conf, kubelet.conf), 0600,
# each embedding the cluster CA and a client certificate issued by kubesalt.pki (kept in
# /etc/kubernetes/pki/kubeconfig, so that x509_v2 renews it).
# kubesalt_kubeadm.files('kubeconfig') lists the files and directories (kubeadm's modes);
# kubesalt_kubeadm.content renders each file when the state runs, embedding the
# certificate and key kubesalt.pki just issued.
{%- set kubeconfig = salt['kubesalt_kubeadm.files']('kubeconfig') %}
include:
  - kubesalt.pki
{%- for path, mode in kubeconfig.directories.items() %}

Create the directory {{ path }} for the kubeconfigs:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in kubeconfig.files.items() %}

Write the kubeconfig {{ path }}:
  file.managed:
    - name: {{ path | yaml_dquote }}
    - source: salt://kubesalt/kubeadm/files/rendered.j2
    - template: jinja
    - context:
        path: {{ path | yaml_dquote }}
    - show_changes: false
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - require:
      - sls: kubesalt.pki
{%- for directory in kubeconfig.directories %}
      - file: Create the directory {{ directory }} for the kubeconfigs
{%- endfor %}
{%- endfor %}
