# Undo kubesalt.kubelet on this node: stop the kubelet (unless its phase is skipped) and remove
# the files kubesalt wrote. The package stays (the repositories own package removal).
{%- set skipped = 'kubelet' in salt['config.get']('kubesalt_skip_phases', []) %}
{%- if not skipped %}

Stop the kubelet:
  service.dead:
    - name: kubelet
    - enable: false
{%- endif %}
{%- for name in ['/var/lib/kubelet/config.yaml', '/var/lib/kubelet/kubeadm-flags.env',
                 '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf'] %}

Remove the the kubelet file {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- if not skipped %}
    - require:
      - service: Stop the kubelet
{%- endif %}
{%- endfor %}
