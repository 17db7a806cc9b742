# The guard of every state that stops this node's etcd (kubesalt.etcd.absent,
# kubesalt.roles.etcd-absent): where an etcd static pod runs, etcd must no longer list this
# node. A member stopped while still listed is a voter lost without being removed (two such
# nodes lose quorum): remove_node removes the member first (phase etcd), and an inventory
# edit dropping the etcd role is refused while the node is a member (docs/etcd.md).
{%- set manifest = salt['kubesalt_kubeadm.path']('/etc/kubernetes/manifests/etcd.yaml') %}

Check that etcd no longer lists this node before its etcd stops:
{%- if salt['file.file_exists'](manifest) %}
  kubesalt_etcd.not_a_member:
    - name: {{ grains['id'] | yaml_dquote }}
{%- else %}
  test.succeed_without_changes:
    - name: "no etcd static pod on this node: no etcd member to stop"
{%- endif %}
