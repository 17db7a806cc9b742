# nginx's certificate comes from the cluster CA (kubesalt.pki.ca creates it on this node,
# the CA minion, which signs locally; kubesalt_pki checks it here first, docs/pki.md); its
# server listens only on the control-plane IP (kubesalt_bootstrap.nginx_config).
{%- set cert = salt['kubesalt_bootstrap.repository_certificate']() %}
{%- set ca = salt['kubesalt_bootstrap.ca']() %}
include:
  - .installed
  - kubesalt.pki.ca

Create the private key of the repository server:
  kubesalt_pki.private_key_managed:
    - name: {{ cert.key | yaml_dquote }}
    - algo: {{ cert.key_args.algo }}
    - keysize: {{ cert.key_args.keysize }}
    - new: false
    - user: root
    - group: root
    - mode: '0600'
    - makedirs: true

Issue the certificate of the repository server from the cluster CA:
  kubesalt_pki.certificate_managed:
    - name: {{ cert.cert | yaml_dquote }}
    - private_key: {{ cert.key | yaml_dquote }}
    - signing_private_key: {{ ca.key | yaml_dquote }}
    - signing_cert: {{ ca.cert | yaml_dquote }}
    - CN: {{ cert.CN | yaml_dquote }}
    - subjectAltName: {{ cert.subjectAltName | yaml_dquote }}
    - basicConstraints: {{ cert.basicConstraints | yaml_dquote }}
    - keyUsage: {{ cert.keyUsage | yaml_dquote }}
    - extendedKeyUsage: {{ cert.extendedKeyUsage | yaml_dquote }}
    - days_valid: {{ cert.days_valid }}
    - days_remaining: {{ cert.days_remaining }}
    - expected: {{ cert.expected | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - kubesalt_pki: Create the private key of the repository server
      - sls: kubesalt.pki.ca

Remove the default nginx site that listens on every address:
  file.absent:
    - name: /etc/nginx/sites-enabled/default
    - require:
      - sls: kubesalt.nginx.installed

Write the nginx server of the repositories and the registry:
  file.managed:
    - name: /etc/nginx/conf.d/kubesalt.conf
    - contents: {{ salt['kubesalt_bootstrap.nginx_config']() | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - sls: kubesalt.nginx.installed
      - kubesalt_pki: Issue the certificate of the repository server from the cluster CA
