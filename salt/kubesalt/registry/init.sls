# The OCI registry (distribution) on loopback, filled from the archives' image layouts.
include:
  - .populated
