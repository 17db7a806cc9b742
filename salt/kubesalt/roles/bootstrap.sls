# The bootstrap role (docs/bootstrap.md): repositories, the cluster CA (kubesalt.pki.ca, on the
# CA minion, which is this node), registry, nginx, salt-master and its minion with the
# daily certificate renewal (kubesalt.pki.scheduled) and backup (kubesalt.backup.scheduled),
# firewall. Order matters once: the
# firewall opens the master's ports before the master runs, so no minion ever connects
# through a closed port.
include:
  - kubesalt.node
  - kubesalt.repo
  - kubesalt.firewall
  - kubesalt.pki.ca
  - kubesalt.registry
  - kubesalt.nginx
  - kubesalt.salt.master
  - kubesalt.salt.minion
  - kubesalt.pki.scheduled
  - kubesalt.backup.scheduled

Bring up the bootstrap role:
  test.nop:
    - require:
      - sls: kubesalt.repo
      - sls: kubesalt.firewall
      - sls: kubesalt.pki.ca
      - sls: kubesalt.registry
      - sls: kubesalt.nginx
      - sls: kubesalt.salt.master
      - sls: kubesalt.salt.minion
      - sls: kubesalt.pki.scheduled
      - sls: kubesalt.backup.scheduled
