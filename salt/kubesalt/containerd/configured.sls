# containerd's configuration: config.toml (CRI, systemd cgroups, the pinned sandbox image)
# and certs.d/<upstream>/hosts.toml for registry.k8s.io, docker.io, quay.io and ghcr.io,
# each served only by the bootstrap registry (nginx on the bootstrap node, 8443), under its
# own path, trusting the cluster CA: nothing is pulled from the internet.
{%- set containerd = salt['kubesalt_kubeadm.files']('containerd') %}
{%- for path, mode in containerd.directories.items() %}

Create the directory {{ path }} for containerd:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in containerd.files.items() %}

Write the containerd file {{ path }}:
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
{%- for directory in containerd.directories %}
      - file: Create the directory {{ directory }} for containerd
{%- endfor %}
{%- endfor %}
