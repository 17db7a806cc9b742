# This node's PKI: CA certificates, service-account key, keys and certificates.
include:
  - .configured
