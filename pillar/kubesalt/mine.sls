# Every node publishes the IPs it chose, so peers (etcd members, keepalived
# unicast peers, firewall sources) are computed from the mine, never guessed.
mine_functions:
  control_plane_ip:
    - mine_function: grains.get
    - kubesalt:control_plane_ip
  workload_plane_ip:
    - mine_function: grains.get
    - kubesalt:workload_plane_ip
