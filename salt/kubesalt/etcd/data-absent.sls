# After its member left the cluster (remove_node, phase etcd): the node's etcd data and the
# --initial-cluster recorded at its join go, so that it can join again as a new member.
include:
  - kubesalt.etcd.absent

Remove the etcd data directory of a member that left the cluster:
  kubesalt_etcd.data_absent:
    - name: {{ salt['kubesalt_kubeadm.path']('/var/lib/etcd') | yaml_dquote }}
    - wait: 60
    - require:
      - sls: kubesalt.etcd.absent

Forget the --initial-cluster recorded when this node joined etcd:
  grains.absent:
    - name: kubesalt:etcd_initial_cluster
    - destructive: true
    - force: true
    - require:
      - kubesalt_etcd: Remove the etcd data directory of a member that left the cluster
