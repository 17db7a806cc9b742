# Undo kubesalt.salt.minion: the service, its configuration and unit.

Stop and disable salt-minion:
  service.dead:
    - name: salt-minion
    - enable: false

Remove the salt-minion configuration and unit:
  file.absent:
    - names:
      - /etc/salt/minion.d/kubesalt.conf
      - /etc/systemd/system/salt-minion.service
    - require:
      - service: Stop and disable salt-minion
