# keepalived holds the API server virtual IP on control-plane nodes (docs/keepalived.md).
# With apiServer.keepalived.enabled false, the operator's own load balancer serves the
# endpoint and these states leave keepalived alone.
{%- if salt['pillar.get']('kubesalt:apiServer:keepalived:enabled', False) %}
include:
  - .running
{%- else %}
Leave keepalived alone because apiServer.keepalived.enabled is false:
  test.nop: []
{%- endif %}
