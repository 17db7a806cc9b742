# Write the kubesalt zone (kubesalt_firewall computes it from the port matrix, this
# node's roles and the other nodes' IPs in the mine) and make it the default zone.
include:
  - .installed

Write the kubesalt firewalld zone from the port matrix:
  file.managed:
    - name: /etc/firewalld/zones/kubesalt.xml
    - contents: {{ salt['kubesalt_firewall.zone_xml']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
    - require:
      - sls: kubesalt.firewall.installed

Make kubesalt the default firewalld zone:
  file.replace:
    - name: /etc/firewalld/firewalld.conf
    - pattern: '^DefaultZone=.*$'
    - repl: DefaultZone=kubesalt
    - append_if_not_found: true
    - require:
      - file: Write the kubesalt firewalld zone from the port matrix
