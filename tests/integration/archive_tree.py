"""A small signed archive tree (every part bootstrap.sh requires, SHA256SUMS signed) and its
ISO, for the tests of bootstrap.sh's and kubesalt-iso's archive handling."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kubesalt.bootstrap import archive
from kubesalt_isobuild import tree
from kubesalt_isobuild.signing import Signer


def make_tree(root: Path, signer: Signer, version: str = "9.8.7", content: str = "") -> Path:
    """The tree of archive `version`; another `content` gives other files, so another
    SHA256SUMS."""
    unsigned = (archive.PRODUCT, archive.KEYRING, archive.SUMS, archive.SUMS_SIGNATURE)
    for rel in archive.REQUIRED:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == archive.WHEELS_DIR:
            path.mkdir()
            (path / "README").write_text(f"wheels{content}\n")
        elif rel not in unsigned:
            path.write_text(f"{rel}\n")
    (root / archive.PRODUCT).write_text(
        tree.product_text("kubesalt", version, "test", datetime.now(UTC), "lab")
    )
    signer.export_public(root / archive.KEYRING, armor=False)
    tree.write_sums(root)
    tree.sign_sums(root, signer)
    return root


def make_iso(root: Path, iso: Path) -> Path:
    """The ISO 9660 image of the tree `root`."""
    tree.make_iso(root, iso, "KUBESALT_TEST", datetime.now(UTC))
    return iso
