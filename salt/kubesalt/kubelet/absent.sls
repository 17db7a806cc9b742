# Undo kubesalt.kubelet on this node: stop the kubelet (unless its phase is skipped) and
# remove the files kubesalt wrote (kubesalt_kubeadm.component_files, from the renderer).
# The package stays (the repositories own package removal).
{%- set skipped = salt['kubesalt_kubeadm.skipped']('kubelet') %}
{%- if not skipped %}

Stop the kubelet:
  service.dead:
    - name: kubelet
    - enable: false
{%- endif %}
{%- for path in salt['kubesalt_kubeadm.component_files']('kubelet') %}

Remove the kubelet file {{ path }}:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- if not skipped %}
    - require:
      - service: Stop the kubelet
{%- endif %}
{%- endfor %}
