# The package repositories of the archives registered on this node (docs/bootstrap.md).
include:
  - .configured
