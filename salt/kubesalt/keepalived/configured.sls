# Write keepalived's configuration: kubesalt_keepalived computes it from the pillar,
# this node's control-plane IP and the other control-plane nodes in the mine.
include:
  - .installed

Write the keepalived track script that checks the local kube-apiserver:
  file.managed:
    - name: /etc/keepalived/kubesalt-check-apiserver
    - contents: {{ salt['kubesalt_keepalived.check_script']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: kubesalt.keepalived.installed

Write the keepalived configuration for the API server virtual IP:
  file.managed:
    - name: /etc/keepalived/keepalived.conf
    - contents: {{ salt['kubesalt_keepalived.config']() | yaml_dquote }}
    # It may hold the VRRP password: no diff in the state's return (the job cache).
    - show_changes: false
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: Write the keepalived track script that checks the local kube-apiserver

Restart keepalived by systemd if it crashes:
  file.managed:
    - name: /etc/systemd/system/keepalived.service.d/kubesalt.conf
    - contents: |
        # Managed by kubesalt (state kubesalt.keepalived).
        # On restart keepalived removes a VIP left behind by a crashed instance.
        [Service]
        Restart=on-failure
        RestartSec=1s
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.keepalived.installed
