# Undo kubesalt.keepalived (role removed, node reset). Stopping keepalived announces
# priority 0, so a peer takes the VIP over at once. Where keepalived was never installed
# there is nothing to stop: without the onlyif, a dry run (test=True) says the service
# "would have been stopped" on every node without the control-plane role. (pkg.version asks
# dpkg, in milliseconds; service.available lists every systemd unit, in most of a second.)

Stop and disable keepalived:
  service.dead:
    - name: keepalived
    - enable: false
    - onlyif:
      - fun: pkg.version
        args: [keepalived]

Remove the keepalived configuration for the API server virtual IP:
  file.absent:
    - name: /etc/keepalived/keepalived.conf
    - require:
      - service: Stop and disable keepalived

Remove the keepalived track script that checks the local kube-apiserver:
  file.absent:
    - name: /etc/keepalived/kubesalt-check-apiserver
    - require:
      - service: Stop and disable keepalived

Remove the keepalived restart policy:
  file.absent:
    - name: /etc/systemd/system/keepalived.service.d/kubesalt.conf
    - require:
      - service: Stop and disable keepalived

Remove the keepalived package:
  pkg.removed:
    - name: keepalived
    - require:
      - file: Remove the keepalived configuration for the API server virtual IP
      - file: Remove the keepalived track script that checks the local kube-apiserver
      - file: Remove the keepalived restart policy
