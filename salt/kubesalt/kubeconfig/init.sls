# The kubeconfigs of /etc/kubernetes.
include:
  - .configured
