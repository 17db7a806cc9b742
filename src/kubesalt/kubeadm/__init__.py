"""kubeadm-equivalent rendering: what `kubeadm init` / `kubeadm join` would write on a node.

The modules here are pure builders (no Salt dunders, no I/O except the writer in
`render.write_tree`): they turn the normalized configuration (the plain dict produced by
`kubesalt.config`) and a `Node` into data that matches kubeadm 1.33 or 1.34 field by field
(docs/kubeadm-differences.md lists the deliberate differences).

- `model`: the `Node` being rendered and the filesystem `Layout`.
- `images`: the one pinned image list (`kubesalt/data/images.yaml`), per Kubernetes release.
- `releases`: what differs from one Kubernetes minor to the next, and which release a node
  and the cluster render.
- `certs`: the certificate table (which certificate each node gets, with subject, SANs, usages).
- `pki`: local issuing with `cryptography` (preview command and tests).
- `manifests`: the four control-plane static pods.
- `kubeconfig`, `kubelet`, `containerd`: the other files.
- `render`: every file a node gets for its roles, and the atomic writer.
"""

from kubesalt.errors import KubesaltError


class RenderError(KubesaltError):
    """A node or an argument given to the renderer is invalid."""
