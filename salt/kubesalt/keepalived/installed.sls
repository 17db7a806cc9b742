# Install keepalived from the bootstrap node's repository.

Install the keepalived package:
  pkg.installed:
    - name: keepalived
