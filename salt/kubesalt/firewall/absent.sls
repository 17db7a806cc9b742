# Undo kubesalt.firewall (node reset): public becomes the default zone again and the
# kubesalt zone goes. firewalld itself stays installed and running.

Restore public as the default firewalld zone:
  file.replace:
    - name: /etc/firewalld/firewalld.conf
    - pattern: '^DefaultZone=kubesalt$'
    - repl: DefaultZone=public
    - ignore_if_missing: true

Remove the kubesalt firewalld zone:
  file.absent:
    - name: /etc/firewalld/zones/kubesalt.xml
    - require:
      - file: Restore public as the default firewalld zone

Reload firewalld without the kubesalt zone:
  cmd.run:
    - name: firewall-cmd --reload
    - onlyif: firewall-cmd --state
    - onchanges:
      - file: Restore public as the default firewalld zone
      - file: Remove the kubesalt firewalld zone
