# The kubelet's files as kubeadm writes them: /var/lib/kubelet/config.yaml, kubeadm-flags.env
# (--node-ip is the node's workload-plane IP; the sandbox image from the pinned image list)
# and the systemd drop-in 10-kubeadm.conf, and from Kubernetes 1.34 on instance-config.yaml
# (the CRI socket); /etc/kubernetes/manifests, its staticPodPath. A kubelet file the node's
# release does not write (another release's) is removed.
{%- set kubelet = salt['kubesalt_kubeadm.files']('kubelet') %}
{%- for path, mode in kubelet.directories.items() %}

Create the directory {{ path }} for the kubelet:
  file.directory:
    - name: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - makedirs: true
{%- endfor %}
{%- for path, mode in kubelet.files.items() %}

Write the kubelet file {{ path }}:
  file.managed:
    - name: {{ path | yaml_dquote }}
    - source: salt://kubesalt/kubeadm/files/rendered.j2
    - template: jinja
    - context:
        path: {{ path | yaml_dquote }}
    - user: root
    - group: root
    - mode: {{ mode | yaml_dquote }}
    - require:
{%- for directory in kubelet.directories %}
      - file: Create the directory {{ directory }} for the kubelet
{%- endfor %}
{%- endfor %}
{%- for path in salt['kubesalt_kubeadm.stale_files']('kubelet') %}

Remove the kubelet file {{ path }}, which the node's Kubernetes release does not write:
  file.absent:
    - name: {{ path | yaml_dquote }}
{%- endfor %}
