"""bootstrap.sh: turn one machine into the kubesalt bootstrap node (docs/bootstrap.md).

`scripts/bootstrap.sh` is glue: it finds a Python and this package (on the archive's
wheelhouse), then runs `python3 -m kubesalt.bootstrap`. The phases are data
(`kubesalt.bootstrap.cli.PHASES`); each is timed, skippable by name and named in every
error. The pure parts (phase runner, preflight checks, archive layout, Salt and service
configuration, the OCI push client) are importable without Salt and unit-tested.
"""
