"""The air-gapped ISO build (docs/iso.md).

One manifest (``iso/manifest.yaml``) pins every artifact; the build fetches each one from
its upstream or from an offline cache, verifies its digest, and lays out the ISO tree:
an apt and/or a yum repository, one OCI image layout, a wheelhouse, the Salt tree, the
scripts, ``product.txt`` and ``SHA256SUMS``; ``xorriso`` turns the tree into an ISO.

Entry point: ``iso/build`` (``kubesalt_isobuild.build.main``). See docs/iso.md.
"""
