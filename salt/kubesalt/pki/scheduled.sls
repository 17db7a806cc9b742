# The daily certificate renewal, on the bootstrap node (the bootstrap role includes this):
# a schedule item of its salt-minion runs kubesalt_certs.renew_scheduled, which runs the
# renew_certificates orchestration on this node's master unless another orchestration
# holds the lock, and records what it did for salt-run kubesalt_certs.expiry
# (docs/pki.md#the-daily-renewal). salt-minion is restarted when the item changes.
include:
  - kubesalt.salt.minion

Schedule the daily certificate renewal on the bootstrap node:
  file.managed:
    - name: /etc/salt/minion.d/kubesalt-schedule.conf
    - contents: {{ salt['kubesalt_certs.schedule_config'](saltenv) | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.salt.installed
    - watch_in:
      - service: Run salt-minion
