# salt-run state.orchestrate kubesalt.orchestrate.addons saltenv=kubesalt-<version>
# Applies the cluster's API objects again (kubeadm's upload-config, cluster-admins and node
# RBAC, the CNI, kube-proxy, CoreDNS, the Node labels and taints) once the CA minion's
# kube-apiserver answers, and waits for their rollout. bootstrap.sh's last phase runs it;
# deploy_node runs the same addons phase. docs/addons.md, docs/orchestrations.md.

Run the addons orchestration:
  kubesalt_orchestrate.ran:
    - orchestration: addons
    - saltenv: {{ saltenv | yaml_dquote }}
