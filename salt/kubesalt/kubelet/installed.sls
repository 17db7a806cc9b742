# Install the kubelet, and kubectl (the orchestrations label, drain and delete Node objects
# with it on the CA node), at the versions the archive pins, from the archive's repository
# alone (kubesalt_packages.install_options), unless the kubelet phase is skipped on
# this node (kubesalt_skip_phases, a grain, pillar key or minion option: the lab, which has
# no Kubernetes binaries, skips it; docs/states.md). When the archive pins another
# Kubernetes release than the one this node renders (the middle of an upgrade, before the
# node's stage), both stay as installed (kubesalt_packages.release_hold, docs/states.md).
{%- set skipped = salt['kubesalt_kubeadm.skipped']('kubelet') %}
{%- set hold = None if skipped else salt['kubesalt_packages.release_hold']('kubelet', 'kubectl') %}
{%- if skipped %}

Skip installing the kubelet:
  test.succeed_without_changes:
    - name: "phase kubelet is skipped on this node (kubesalt_skip_phases): kubelet is not installed"
{%- elif hold %}

Keep the kubelet and kubectl at the node's Kubernetes release:
  test.configurable_test_state:
    - changes: false
    - result: {{ hold.result | json }}
    - comment: {{ hold.comment | yaml_dquote }}
    - allow_test_mode_failure: true
{%- else %}
{%- set install = salt['kubesalt_packages.install_options']('kubelet', 'kubectl') %}

Install the kubelet and kubectl:
  pkg.installed:
    - pkgs: {{ install.pkgs | json }}
    - fromrepo: {{ install.fromrepo | yaml_dquote }}
    - refresh: {{ install.refresh | json }}
    - install_recommends: {{ install.install_recommends | json }}
{%- endif %}
