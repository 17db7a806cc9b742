# etcdctl on every etcd node: the deploy_node and remove_node orchestrations change etcd's
# membership through it (kubesalt_etcd, docs/etcd.md). Debian ships it as etcd-client,
# RHEL with etcd itself. etcd runs from its static pod, never from this package.
{%- set package = 'etcd-client' if grains['os_family'] == 'Debian' else 'etcd' %}

Install etcdctl for etcd membership changes:
  pkg.installed:
    - name: {{ package }}
