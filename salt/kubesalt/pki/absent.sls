# Undo kubesalt.pki on this node (reset): its keys, certificates, the CA certificates
# and the service-account key. The CA minion's CAs are kept: every certificate of the
# cluster depends on them (removing them is kubesalt.ca.absent, an explicit operation).
{%- set pki_dir = salt['kubesalt_kubeadm.path']('/etc/kubernetes/pki') %}
{%- set is_ca = grains.id == salt['pillar.get']('kubesalt:ca:minion') %}
{%- set keep = ['ca.crt', 'ca.key', 'etcd/ca.crt', 'etcd/ca.key', 'front-proxy-ca.crt',
                'front-proxy-ca.key', 'sa.key', 'sa.pub'] if is_ca else [] %}
{%- for name in ['apiserver', 'apiserver-kubelet-client', 'front-proxy-client',
                 'apiserver-etcd-client', 'etcd/server', 'etcd/peer',
                 'etcd/healthcheck-client'] %}
{%- for ext in ['crt', 'key'] %}

Remove {{ name }}.{{ ext }} from the node PKI:
  file.absent:
    - name: {{ (pki_dir ~ '/' ~ name ~ '.' ~ ext) | yaml_dquote }}
{%- endfor %}
{%- endfor %}

Remove the client certificates embedded in kubeconfigs:
  file.absent:
    - name: {{ (pki_dir ~ '/kubeconfig') | yaml_dquote }}
{%- for name in ['ca.crt', 'etcd/ca.crt', 'front-proxy-ca.crt', 'sa.key', 'sa.pub'] %}
{%- if name not in keep %}

Remove {{ name }} from the node PKI:
  file.absent:
    - name: {{ (pki_dir ~ '/' ~ name) | yaml_dquote }}
{%- endif %}
{%- endfor %}
