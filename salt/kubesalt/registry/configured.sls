# The registry listens on loopback only; nginx fronts it with TLS on the control-plane IP.
include:
  - .installed

Write the registry configuration:
  file.managed:
    - name: /etc/docker/registry/config.yml
    - contents: {{ salt['kubesalt_bootstrap.registry_config']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.registry.installed
