# The bootstrap node's minion: talks to the master on this node's control-plane IP, and
# serves salt-call --local with the archives' trees (kubesalt_bootstrap.minion_config, the
# same text bootstrap.sh writes before Salt runs).
include:
  - kubesalt.salt.installed

Write the salt-minion configuration:
  file.managed:
    - name: /etc/salt/minion.d/kubesalt.conf
    - contents: {{ salt['kubesalt_bootstrap.minion_config']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.salt.installed

Write the salt-minion systemd unit:
  file.managed:
    - name: /etc/systemd/system/salt-minion.service
    - contents: {{ salt['kubesalt_bootstrap.salt_unit']('salt-minion') | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - sls: kubesalt.salt.installed
