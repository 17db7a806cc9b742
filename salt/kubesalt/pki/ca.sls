# The cluster CAs and the service-account key, on the CA minion only (ca.minion): their
# keys never leave it. The CA certificates and sa.pub are published through the mine
# (mine functions from the kubesalt_pki ext_pillar). A CA is never re-issued by this state
# (days_remaining: 0): renewing it is an explicit operation. The kubesalt_pki states check
# each key and certificate on this node first and call x509_v2 only when one is due.
{%- set pki = salt['kubesalt_kubeadm.pki']() %}
{%- if not pki.is_ca %}

Refuse to create the cluster CAs on a minion that is not the CA minion:
  test.fail_without_changes:
    - name: "kubesalt.pki.ca runs on the CA minion (ca.minion) only; this is {{ grains.id }}"
{%- else %}
{%- for path, mode in pki.directories.items() %}

Create the directory {{ path }} of the cluster CAs:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for ca in pki.cas %}

Create the private key of the {{ ca.CN }} CA:
  kubesalt_pki.private_key_managed:
    - name: {{ ca.key | yaml_dquote }}
    - algo: {{ pki.key_args.algo }}
    - keysize: {{ pki.key_args.keysize }}
    - new: false
    - user: root
    - group: root
    - mode: '0600'
    - require:
{%- for path in pki.directories %}
      - file: Create the directory {{ path }} of the cluster CAs
{%- endfor %}

Create the certificate of the {{ ca.CN }} CA:
  kubesalt_pki.certificate_managed:
    - name: {{ ca.cert | yaml_dquote }}
    - signing_private_key: {{ ca.key | yaml_dquote }}
    - CN: {{ ca.CN | yaml_dquote }}
    - subjectAltName: {{ ca.subjectAltName | yaml_dquote }}
    - basicConstraints: {{ ca.basicConstraints | yaml_dquote }}
    - keyUsage: {{ ca.keyUsage | yaml_dquote }}
    - subjectKeyIdentifier: {{ ca.subjectKeyIdentifier | yaml_dquote }}
    - days_valid: {{ ca.days_valid }}
    - days_remaining: 0
    - expected: {{ ca.expected | json }}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - kubesalt_pki: Create the private key of the {{ ca.CN }} CA
{%- endfor %}

Create the service-account key:
  kubesalt_pki.private_key_managed:
    - name: {{ pki.service_account.key | yaml_dquote }}
    - algo: {{ pki.key_args.algo }}
    - keysize: {{ pki.key_args.keysize }}
    - new: false
    - user: root
    - group: root
    - mode: '0600'
    - require:
{%- for path in pki.directories %}
      - file: Create the directory {{ path }} of the cluster CAs
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
      - kubesalt_pki: Create the service-account key

Publish the CA certificates and the service-account public key to the mine:
  kubesalt_pki.mine_published:
    - require:
{%- for ca in pki.cas %}
      - kubesalt_pki: Create the certificate of the {{ ca.CN }} CA
{%- endfor %}
      - kubesalt_pki: Create the service-account key
{%- endif %}
