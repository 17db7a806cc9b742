# The control-plane role: the certificates, kubeconfigs and static pods of kube-apiserver,
# kube-controller-manager and kube-scheduler (kubeadm init on the first node, join
# --control-plane on the others). The kubelet that runs them comes with it.
include:
  - kubesalt.node
  - kubesalt.pki
  - kubesalt.kubeconfig
  - kubesalt.apiserver
  - kubesalt.controller-manager
  - kubesalt.scheduler
  - kubesalt.containerd
  - kubesalt.kubelet

Bring up the control-plane role:
  test.nop:
    - require:
      - sls: kubesalt.node
      - sls: kubesalt.pki
      - sls: kubesalt.kubeconfig
      - sls: kubesalt.apiserver
      - sls: kubesalt.controller-manager
      - sls: kubesalt.scheduler
      - sls: kubesalt.containerd
      - sls: kubesalt.kubelet
