# The daily backup, on the bootstrap node (the bootstrap role includes this): a schedule
# item of its salt-minion runs kubesalt_backup.run, which writes one archive under
# /var/lib/kubesalt/backups, keeps the last 7 and copies it to every control-plane node
# (docs/backup.md). salt-minion is restarted when the item changes.
include:
  - kubesalt.salt.minion

Schedule the daily backup on the bootstrap node:
  file.managed:
    - name: {{ salt['kubesalt_backup.schedule_file']() | yaml_dquote }}
    - contents: {{ salt['kubesalt_backup.schedule_config']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.salt.installed
    - watch_in:
      - service: Run salt-minion
