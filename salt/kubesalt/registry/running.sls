# Run the registry; restart it when its configuration changes.
include:
  - .configured

Run the registry:
  service.running:
    - name: docker-registry
    - enable: true
    - watch:
      - sls: kubesalt.registry.configured
