# Run nginx; reload it when its configuration or certificate changes.
include:
  - .configured

Run nginx:
  service.running:
    - name: nginx
    - enable: true
    - reload: true
    - watch:
      - sls: kubesalt.nginx.configured
