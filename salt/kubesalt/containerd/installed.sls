# Install containerd from the bootstrap repositories, unless the containerd phase is skipped on
# this node (kubesalt_skip_phases, a grain, pillar key or minion option: the lab, which has
# no way to run containers inside its nodes, skips it; docs/states.md).
{%- set skipped = salt['kubesalt_kubeadm.skipped']('containerd') %}
{%- if skipped %}

Skip installing containerd:
  test.succeed_without_changes:
    - name: "phase containerd is skipped on this node (kubesalt_skip_phases): containerd is not installed"
{%- else %}

Install containerd:
  pkg.installed:
    - name: containerd
{%- endif %}
