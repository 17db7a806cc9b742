# etcdctl on every etcd node: the deploy_node and remove_node orchestrations change etcd's
# membership through it (kubesalt_etcd, docs/etcd.md). Debian ships it as etcd-client,
# RHEL with etcd itself. etcd runs from its static pod, never from this package; the
# version is the archive's, from its repository alone (kubesalt_packages.install_options).
{%- set package = 'etcd-client' if grains['os_family'] == 'Debian' else 'etcd' %}
{%- set install = salt['kubesalt_packages.install_options'](package) %}

Install etcdctl for etcd membership changes:
  pkg.installed:
    - pkgs: {{ install.pkgs | json }}
    - fromrepo: {{ install.fromrepo | yaml_dquote }}
    - refresh: {{ install.refresh | json }}
    - install_recommends: {{ install.install_recommends | json }}
