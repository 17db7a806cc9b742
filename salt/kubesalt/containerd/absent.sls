# Undo kubesalt.containerd on this node: stop containerd (unless its phase is skipped) and
# remove the files kubesalt wrote (kubesalt_kubeadm.component_files, from the renderer).
# The package stays (the repositories own package removal).
{%- set skipped = salt['kubesalt_kubeadm.skipped']('containerd') %}
{%- if not skipped %}

Stop containerd:
  service.dead:
    - name: containerd
    - enable: false
{%- endif %}
{%- for path in salt['kubesalt_kubeadm.component_files']('containerd') %}

Remove the containerd file {{ path }}:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- if not skipped %}
    - require:
      - service: Stop containerd
{%- endif %}
{%- endfor %}
