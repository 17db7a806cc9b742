# Install containerd at the version the archive pins, from the archive's repository alone
# (kubesalt_packages.install_options), unless the containerd phase is skipped on
# this node (kubesalt_skip_phases, a grain, pillar key or minion option: the lab, which has
# no way to run containers inside its nodes, skips it; docs/states.md).
{%- set skipped = salt['kubesalt_kubeadm.skipped']('containerd') %}
{%- if skipped %}

Skip installing containerd:
  test.succeed_without_changes:
    - name: "phase containerd is skipped on this node (kubesalt_skip_phases): containerd is not installed"
{%- else %}
{%- set install = salt['kubesalt_packages.install_options']('containerd') %}

Install containerd:
  pkg.installed:
    - pkgs: {{ install.pkgs | json }}
    - fromrepo: {{ install.fromrepo | yaml_dquote }}
    - refresh: {{ install.refresh | json }}
    - install_recommends: {{ install.install_recommends | json }}
{%- endif %}
