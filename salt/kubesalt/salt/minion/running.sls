# Run salt-minion. A changed configuration restarts it after the run (KillMode=process
# keeps the run that asked for it alive).
include:
  - .configured

Reload systemd units after a change of the salt-minion unit:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: Write the salt-minion systemd unit

Run salt-minion:
  service.running:
    - name: salt-minion
    - enable: true
    - watch:
      - sls: kubesalt.salt.minion.configured
    - require:
      - module: Reload systemd units after a change of the salt-minion unit
