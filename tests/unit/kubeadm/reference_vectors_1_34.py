"""What kubeadm 1.34 writes for the reference node of `reference_vectors` (cp1, 10.0.0.10, the
same configuration), where it differs from 1.33; docs/kubernetes-releases.md gives the sources.

The kube-apiserver, kube-controller-manager and kube-scheduler commands, probes and volumes
are those of 1.33 (`reference_vectors`); only their image tags change.
"""

from reference_vectors import _lines

VERSION = "v1.34.2"

# etcd 3.6 (kubernetes#132838): --feature-gates=InitialCorruptCheck=true and
# --watch-progress-notify-interval=5s instead of the two --experimental-* flags.
ETCD_FIRST = _lines("""
etcd
--advertise-client-urls=https://10.0.0.10:2379
--cert-file=/etc/kubernetes/pki/etcd/server.crt
--client-cert-auth=true
--data-dir=/var/lib/etcd
--feature-gates=InitialCorruptCheck=true
--initial-advertise-peer-urls=https://10.0.0.10:2380
--initial-cluster=cp1=https://10.0.0.10:2380
--key-file=/etc/kubernetes/pki/etcd/server.key
--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.10:2379
--listen-metrics-urls=http://127.0.0.1:2381
--listen-peer-urls=https://10.0.0.10:2380
--name=cp1
--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
--peer-client-cert-auth=true
--peer-key-file=/etc/kubernetes/pki/etcd/peer.key
--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
--snapshot-count=10000
--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
--watch-progress-notify-interval=5s
""")

ETCD_CP2 = _lines("""
etcd
--advertise-client-urls=https://10.0.0.11:2379
--cert-file=/etc/kubernetes/pki/etcd/server.crt
--client-cert-auth=true
--data-dir=/var/lib/etcd
--feature-gates=InitialCorruptCheck=true
--initial-advertise-peer-urls=https://10.0.0.11:2380
--initial-cluster=cp1=https://10.0.0.10:2380,cp2=https://10.0.0.11:2380
--initial-cluster-state=existing
--key-file=/etc/kubernetes/pki/etcd/server.key
--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.11:2379
--listen-metrics-urls=http://127.0.0.1:2381
--listen-peer-urls=https://10.0.0.11:2380
--name=cp2
--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
--peer-client-cert-auth=true
--peer-key-file=/etc/kubernetes/pki/etcd/peer.key
--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
--snapshot-count=10000
--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
--watch-progress-notify-interval=5s
""")

# `kubeadm config images list --kubernetes-version v1.34.2`, plus the CNI.
IMAGES = {
    "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.34.2",
    "kube-controller-manager": "registry.k8s.io/kube-controller-manager:v1.34.2",
    "kube-scheduler": "registry.k8s.io/kube-scheduler:v1.34.2",
    "kube-proxy": "registry.k8s.io/kube-proxy:v1.34.2",
    "etcd": "registry.k8s.io/etcd:3.6.5-0",
    "pause": "registry.k8s.io/pause:3.10.1",
    "coredns": "registry.k8s.io/coredns/coredns:v1.12.1",
    "kube-router": "docker.io/cloudnativelabs/kube-router:v2.11.1",
}

# NodeLocalCRISocket (beta, on by default in 1.34, kubernetes#131981): the CRI socket leaves
# kubeadm-flags.env for instance-config.yaml (WriteInstanceConfigToDisk: one %q line), which
# kubeadm patches into config.yaml (WriteConfigToDisk).
FLAGS_ENV = (
    'KUBELET_KUBEADM_ARGS="--node-ip=10.0.0.10 '
    '--pod-infra-container-image=registry.k8s.io/pause:3.10.1"\n'
)
INSTANCE_CONFIG = 'containerRuntimeEndpoint: "unix:///var/run/containerd/containerd.sock"\n'
KUBELET_CONFIG = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "authentication": {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
    },
    "authorization": {"mode": "Webhook"},
    "cgroupDriver": "systemd",
    "clusterDNS": ["10.96.0.10"],
    "clusterDomain": "cluster.local",
    "containerRuntimeEndpoint": "unix:///var/run/containerd/containerd.sock",
    "healthzBindAddress": "127.0.0.1",
    "healthzPort": 10248,
    "readOnlyPort": 0,
    "rotateCertificates": True,
    "staticPodPath": "/etc/kubernetes/manifests",
}
