# This node's PKI, as kubeadm init/join would leave /etc/kubernetes/pki: the CA
# certificates it needs (from the mine; created here on the CA minion), sa.key and sa.pub
# on control-plane nodes (sealed by the CA minion for this node only), and every key
# (generated here, 0600, never sent) and certificate (signed by the CA minion under the
# signing policy of its kind, through x509_v2 remote signing). A certificate is renewed
# when fewer than days_remaining days are left (pki.renewBeforeDays); a renew_certificates
# run hands its own window or force in `renewal` (pillar kubesalt_renew, docs/pki.md).
# The kubesalt_pki states check each key and certificate on this node against `expected`
# first, and ask x509_v2 (and so the CA minion) only when one is due
# (docs/pki.md#how-a-certificate-is-checked).
{%- set pki = salt['kubesalt_kubeadm.pki']() %}
{%- if pki.is_ca %}
include:
  - kubesalt.pki.ca
{%- endif %}
{%- for path, mode in pki.directories.items() %}

Create the directory {{ path }} of the node PKI:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- if not pki.is_ca %}
{%- for ca in pki.cas %}

Write the certificate of the {{ ca.CN }} CA:
  file.managed:
    - name: {{ ca.cert | yaml_dquote }}
    - contents: {{ salt['kubesalt_kubeadm.ca_certificate'](ca.kind) | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
{%- for path in pki.directories %}
      - file: Create the directory {{ path }} of the node PKI
{%- endfor %}
{%- endfor %}
{%- if pki.service_account %}

Write the service-account key given by the CA minion:
  file.managed:
    - name: {{ pki.service_account.key | yaml_dquote }}
    - source: salt://kubesalt/kubeadm/files/rendered.j2
    - template: jinja
    - context:
        path: {{ pki.service_account.key | yaml_dquote }}
    - show_changes: false
    - user: root
    - group: root
    - mode: '0600'
    - require:
{%- for path in pki.directories %}
      - file: Create the directory {{ path }} of the node PKI
{%- endfor %}

Write the service-account public key:
  file.managed:
    - name: {{ pki.service_account.pub | yaml_dquote }}
    - source: salt://kubesalt/kubeadm/files/rendered.j2
    - template: jinja
    - context:
        path: {{ pki.service_account.pub | yaml_dquote }}
    - user: root
    - group: root
    - mode: '0600'
    - require:
      - file: Write the service-account key given by the CA minion
{%- endif %}
{%- endif %}
{%- for cert in pki.certificates %}

Create the private key of the {{ cert.kind }} certificate:
  kubesalt_pki.private_key_managed:
    - name: {{ cert.key | yaml_dquote }}
    - algo: {{ pki.key_args.algo }}
    - keysize: {{ pki.key_args.keysize }}
    - new: false
    - user: root
    - group: root
    - mode: '0600'
    - require:
{%- for path in pki.directories %}
      - file: Create the directory {{ path }} of the node PKI
{%- endfor %}

Obtain the {{ cert.kind }} certificate from the CA minion:
  kubesalt_pki.certificate_managed:
    - name: {{ cert.cert | yaml_dquote }}
    - private_key: {{ cert.key | yaml_dquote }}
    - signing_policy: {{ cert.signing_policy | yaml_dquote }}
{%- if pki.ca_server %}
    - ca_server: {{ pki.ca_server | yaml_dquote }}
{%- endif %}
    - days_remaining: {{ cert.days_remaining }}
{%- if pki.renewal %}
    - renewal: {{ pki.renewal | json }}
{%- endif %}
    - expected: {{ cert.expected | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - kubesalt_pki: Create the private key of the {{ cert.kind }} certificate
{%- if pki.is_ca %}
      - sls: kubesalt.pki.ca
{%- else %}
      - file: Write the certificate of the {{ cert.ca_CN }} CA
{%- endif %}
{%- endfor %}
