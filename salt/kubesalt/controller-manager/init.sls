# The kube-controller-manager static pod: the kubelet runs it from its manifest.
include:
  - .configured
