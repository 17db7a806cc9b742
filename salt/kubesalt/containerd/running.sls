# Run containerd, restarted when its configuration changes, unless the containerd phase is
# skipped on this node (kubesalt_skip_phases; docs/states.md).
include:
  - .installed
  - .configured
  - kubesalt.pki
{%- set skipped = salt['kubesalt_kubeadm.skipped']('containerd') %}
{%- if skipped %}

Skip running containerd:
  test.succeed_without_changes:
    - name: "phase containerd is skipped on this node (kubesalt_skip_phases): containerd is not started"
{%- else %}

Run containerd:
  service.running:
    - name: containerd
    - enable: true
    - require:
      - sls: kubesalt.containerd.installed
      - sls: kubesalt.pki
    - watch:
      - sls: kubesalt.containerd.configured
{%- endif %}
