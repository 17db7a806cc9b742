# Install nginx from the archive's repository.

Install the nginx-light package:
  pkg.installed:
    - name: nginx-light
    - refresh: false
