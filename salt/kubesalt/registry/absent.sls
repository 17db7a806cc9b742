# Undo kubesalt.registry: the service, its configuration, its images and the package.

Stop and disable the registry:
  service.dead:
    - name: docker-registry
    - enable: false

Remove the registry's images:
  file.absent:
    - name: /var/lib/docker-registry/docker
    - require:
      - service: Stop and disable the registry

Remove the docker-registry package:
  pkg.purged:
    - name: docker-registry
    - require:
      - file: Remove the registry's images
