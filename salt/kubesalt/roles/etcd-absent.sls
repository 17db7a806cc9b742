# The etcd role was removed from this node: stop its etcd member (remove it from the
# cluster first: the remove_node orchestration does) and drop etcd's certificates.
include:
  - kubesalt.etcd.absent
{%- set pki_dir = salt['kubesalt_kubeadm.path']('/etc/kubernetes/pki/etcd') %}
{%- for name in ['server', 'peer', 'healthcheck-client'] %}
{%- for ext in ['crt', 'key'] %}

Remove the etcd {{ name }}.{{ ext }} of a removed etcd role:
  file.absent:
    - name: {{ (pki_dir ~ '/' ~ name ~ '.' ~ ext) | yaml_dquote }}
    - require:
      - sls: kubesalt.etcd.absent
{%- endfor %}
{%- endfor %}
