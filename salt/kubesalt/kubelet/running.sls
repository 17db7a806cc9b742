# Run the kubelet, restarted when its configuration changes, unless the kubelet phase is
# skipped on this node (kubesalt_skip_phases; docs/states.md).
include:
  - .installed
  - .configured
  - kubesalt.kubeconfig
{%- set skipped = salt['kubesalt_kubeadm.skipped']('kubelet') %}
{%- if skipped %}

Skip running the kubelet:
  test.succeed_without_changes:
    - name: "phase kubelet is skipped on this node (kubesalt_skip_phases): kubelet is not started"
{%- else %}

Run the kubelet:
  service.running:
    - name: kubelet
    - enable: true
    - require:
      - sls: kubesalt.kubelet.installed
    - watch:
      - sls: kubesalt.kubelet.configured
      # kubelet.conf embeds the kubelet's client certificate, read only at start: a renewed
      # one needs a restart (docs/pki.md#renewal).
      - sls: kubesalt.kubeconfig
{%- endif %}
