# Undo kubesalt.containerd on this node: stop containerd (unless its phase is skipped) and remove
# the files kubesalt wrote. The package stays (the repositories own package removal).
{%- set skipped = 'containerd' in salt['config.get']('kubesalt_skip_phases', []) %}
{%- if not skipped %}

Stop containerd:
  service.dead:
    - name: containerd
    - enable: false
{%- endif %}
{%- for name in ['/etc/containerd/config.toml',
                 '/etc/containerd/certs.d/registry.k8s.io/hosts.toml',
                 '/etc/containerd/certs.d/docker.io/hosts.toml',
                 '/etc/containerd/certs.d/quay.io/hosts.toml',
                 '/etc/containerd/certs.d/ghcr.io/hosts.toml'] %}

Remove the containerd file {{ name }}:
  file.absent:
    - name: {{ salt['kubesalt_kubeadm.path'](name) | yaml_dquote }}
{%- if not skipped %}
    - require:
      - service: Stop containerd
{%- endif %}
{%- endfor %}
