# The etcd static pod (the kubelet runs it from its manifest), and etcdctl for membership.
include:
  - .installed
  - .configured
