# The master: bound to the control-plane IP, auto_accept false (keys are accepted by the
# orchestrations), peer publication only for x509 remote signing, the archives as saltenvs
# (kubesalt_bootstrap.master_config).
include:
  - kubesalt.salt.installed

Write the salt-master configuration:
  file.managed:
    - name: /etc/salt/master.d/kubesalt.conf
    - contents: {{ salt['kubesalt_bootstrap.master_config']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.salt.installed

Write the salt-master systemd unit:
  file.managed:
    - name: /etc/systemd/system/salt-master.service
    - contents: {{ salt['kubesalt_bootstrap.salt_unit']('salt-master') | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - sls: kubesalt.salt.installed
