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

{#- A node's first firewalld start drops its salt-minion's publish connection, and the minion
    notices only minutes later. firewalld starts when its package is installed (Debian's
    postinst) or, failing that, when the service state starts it. The minion restarts itself
    a moment later (a transient timer: the job that runs this state must return first; its
    accuracy set, as systemd would otherwise fire it up to a minute late); the
    deploy_node orchestration waits for the new process (kubesalt.orchestrate.steps
    MINION_RESTART, whose ID this is). #}

Restart salt-minion after firewalld's first start:
  cmd.run:
    - name: systemd-run --no-block --collect --on-active=2 --timer-property=AccuracySec=100ms systemctl restart salt-minion
    - onchanges:
      - pkg: Install the firewalld package
      - service: Run firewalld
