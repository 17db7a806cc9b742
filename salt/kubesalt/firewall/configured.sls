# Write the kubesalt zone (kubesalt_firewall computes it from the port matrix, this
# node's roles and the other nodes' IPs in the mine) and make it the default zone.
# bootstrap.sh's local run (salt-call --local) has no mine, so it would drop every other
# node from the sources: once the zone exists, only runs through the master rewrite it.
{%- set zone = '/etc/firewalld/zones/kubesalt.xml' %}
{%- set local_rerun = salt['config.get']('file_client') == 'local' and salt['file.file_exists'](zone) %}
include:
  - .installed

Write the kubesalt firewalld zone from the port matrix:
{%- if local_rerun %}
  file.exists:
    - name: {{ zone }}
{%- else %}
  file.managed:
    - name: {{ zone }}
    - contents: {{ salt['kubesalt_firewall.zone_xml']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - makedirs: true
{%- endif %}
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
