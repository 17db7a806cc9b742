# Run firewalld and reload it when the zone or the default zone changed. A reload keeps
# established connections (conntrack), so running Salt and etcd sessions survive.
include:
  - .configured

Run firewalld:
  service.running:
    - name: firewalld
    - enable: true
    - require:
      - sls: kubesalt.firewall.configured

Reload firewalld with the kubesalt zone:
  cmd.run:
    - name: firewall-cmd --reload
    - onchanges:
      - sls: kubesalt.firewall.configured
    - require:
      - service: Run firewalld
