# The etcd role: etcd's certificates and its static pod (kubeadm's stacked etcd member).
include:
  - kubesalt.node
  - kubesalt.pki
  - kubesalt.etcd

Bring up the etcd role:
  test.nop:
    - require:
      - sls: kubesalt.node
      - sls: kubesalt.pki
      - sls: kubesalt.etcd
