# Run keepalived. A changed configuration (a control-plane node added or removed) is
# applied with a reload: keepalived keeps its VRRP state and the VIP stays where it is.
include:
  - .configured

Run keepalived and reload it when its configuration changes:
  service.running:
    - name: keepalived
    - enable: true
    - reload: true
    - watch:
      - sls: kubesalt.keepalived.configured
