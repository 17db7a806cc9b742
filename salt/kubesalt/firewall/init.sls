# firewalld on every node, from the port matrix (docs/firewall.md). With
# firewall.enabled false these states leave firewalld alone.
{%- if salt['pillar.get']('kubesalt:firewall:enabled', False) %}
include:
  - .running
{%- else %}
Leave firewalld alone because firewall.enabled is false:
  test.nop: []
{%- endif %}
