# Undo kubesalt.pki on this node (reset): every key and certificate a node can get, the
# kubeconfig client certificates, the CA certificates and the service-account key, as
# kubesalt_kubeadm.component_files lists them from the renderer. The CA minion keeps its
# CAs and the service-account key: every certificate of the cluster depends on them
# (removing them is an explicit operation). No CA key is ever removed here.
{%- for path in salt['kubesalt_kubeadm.component_files']('pki') %}

Remove {{ path }} from the node PKI:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- endfor %}
