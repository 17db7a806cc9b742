# The kubelet: installed, configured and running (each skippable by phase).
include:
  - .running
