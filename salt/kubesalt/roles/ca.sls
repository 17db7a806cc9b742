# The ca role (docs/pki.md): the cluster CAs and the service-account key live here only;
# every other node gets its certificates signed here through x509_v2 remote signing.
include:
  - kubesalt.node
  - kubesalt.pki.ca

Bring up the ca role:
  test.nop:
    - require:
      - sls: kubesalt.node
      - sls: kubesalt.pki.ca
