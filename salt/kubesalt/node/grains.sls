# Choose this node's control-plane and workload-plane IPs from the CIDR lists of
# bootstrap.yaml (kubesalt_network.plane_ip decides; an IP chosen before stays
# while it is valid), keep them in grains and publish them through the mine.
{%- set control_plane_ip = salt['kubesalt_network.plane_ip']('controlPlane') %}
{%- set workload_plane_ip = salt['kubesalt_network.plane_ip']('workloadPlane') %}

Record this node's control-plane IP in its grains:
  grains.present:
    - name: kubesalt:control_plane_ip
    - value: {{ control_plane_ip | yaml_dquote }}
    - delimiter: ':'

Record this node's workload-plane IP in its grains:
  grains.present:
    - name: kubesalt:workload_plane_ip
    - value: {{ workload_plane_ip | yaml_dquote }}
    - delimiter: ':'

Publish this node's addresses to the Salt mine:
  module.run:
    - mine.update: []
    - onchanges:
      - grains: Record this node's control-plane IP in its grains
      - grains: Record this node's workload-plane IP in its grains
