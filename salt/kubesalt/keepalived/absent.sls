# Undo kubesalt.keepalived (role removed, node reset). Stopping keepalived announces
# priority 0, so a peer takes the VIP over at once. Where keepalived was never installed
# there is nothing to stop: without the check, a dry run (test=True) says the service
# "would have been stopped" on every node without the control-plane role. The check is made
# when the SLS renders (pkg.version asks dpkg, in milliseconds), not with onlyif: Salt looks
# for service.mod_run_check then, and that miss loads every state module of the minion
# (1.5 s of a worker's highstate).
{%- set installed = salt['pkg.version']('keepalived') %}
{%- if installed %}

Stop and disable keepalived:
  service.dead:
    - name: keepalived
    - enable: false
{%- endif %}

Remove the keepalived configuration for the API server virtual IP:
  file.absent:
    - name: /etc/keepalived/keepalived.conf
{%- if installed %}
    - require:
      - service: Stop and disable keepalived
{%- endif %}

Remove the keepalived track script that checks the local kube-apiserver:
  file.absent:
    - name: /etc/keepalived/kubesalt-check-apiserver
{%- if installed %}
    - require:
      - service: Stop and disable keepalived
{%- endif %}

Remove the keepalived restart policy:
  file.absent:
    - name: /etc/systemd/system/keepalived.service.d/kubesalt.conf
{%- if installed %}
    - require:
      - service: Stop and disable keepalived
{%- endif %}

Remove the keepalived package:
  pkg.removed:
    - name: keepalived
    - require:
      - file: Remove the keepalived configuration for the API server virtual IP
      - file: Remove the keepalived track script that checks the local kube-apiserver
      - file: Remove the keepalived restart policy
