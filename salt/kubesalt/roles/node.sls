# The node role: containerd (the bootstrap registry as the only mirror), the kubelet's
# files and kubelet.conf (pointing at apiServer.host on a worker), the kubelet.
include:
  - kubesalt.node
  - kubesalt.pki
  - kubesalt.containerd
  - kubesalt.kubeconfig
  - kubesalt.kubelet

Bring up the node role:
  test.nop:
    - require:
      - sls: kubesalt.node
      - sls: kubesalt.pki
      - sls: kubesalt.containerd
      - sls: kubesalt.kubeconfig
      - sls: kubesalt.kubelet
