# Undo kubesalt.salt.master: the service, its configuration and unit (keys are kept).

Stop and disable salt-master:
  service.dead:
    - name: salt-master
    - enable: false

Remove the salt-master configuration and unit:
  file.absent:
    - names:
      - /etc/salt/master.d/kubesalt.conf
      - /etc/systemd/system/salt-master.service
    - require:
      - service: Stop and disable salt-master
