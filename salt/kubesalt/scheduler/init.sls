# The kube-scheduler static pod: the kubelet runs it from its manifest.
include:
  - .configured
