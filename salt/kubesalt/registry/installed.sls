# Install the registry (distribution) from the archive's repository.

Install the docker-registry package:
  pkg.installed:
    - name: docker-registry
    - refresh: false
