# Install firewalld from the bootstrap node's repository.

Install the firewalld package:
  pkg.installed:
    - name: firewalld
