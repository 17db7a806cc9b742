# Run salt-master; restart it when its configuration or unit changes.
include:
  - .configured

Reload systemd units after a change of the salt-master unit:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: Write the salt-master systemd unit

Run salt-master:
  service.running:
    - name: salt-master
    - enable: true
    - watch:
      - sls: kubesalt.salt.master.configured
    - require:
      - module: Reload systemd units after a change of the salt-master unit
