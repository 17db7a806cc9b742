# nginx: the archives' repositories and the registry, over TLS on the control-plane IP.
include:
  - .running
