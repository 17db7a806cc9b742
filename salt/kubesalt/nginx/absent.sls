# Undo kubesalt.nginx: the service, the kubesalt server, its certificate, the package.

Stop and disable nginx:
  service.dead:
    - name: nginx
    - enable: false

Remove the nginx server of the repositories and the registry:
  file.absent:
    - name: /etc/nginx/conf.d/kubesalt.conf
    - require:
      - service: Stop and disable nginx

Remove the certificate and key of the repository server:
  file.absent:
    - names:
      - /etc/kubesalt/pki/repository.crt
      - /etc/kubesalt/pki/repository.key
    - require:
      - service: Stop and disable nginx

Remove the nginx-light package:
  pkg.purged:
    - name: nginx-light
    - require:
      - file: Remove the nginx server of the repositories and the registry
