"""Lab-only stand-ins for what this machine cannot run (docs/lab.md, "Stand-ins").

They are copied into each lab node by `kubesalt_lab.host.write_node_files`; nothing of the
product uses them. `staticpods.py` does for etcd what the kubelet would; `apiserver.py`
answers `/livez` on the kube-apiserver's port so keepalived's tracking is real.
"""
