"""What an archive carries (product.txt, manifest.lock.yaml, the wheel's images.yaml) and
which archive an upgrade or a downgrade goes to."""

import pytest
import yaml

from kubesalt.upgrade import UpgradeError, archives
from tests.unit.upgrade.archive_fixtures import IMAGES, ROOT, images_of, make_archive


def test_the_kubernetes_version_comes_from_product_txt_with_a_leading_v():
    assert archives.kubernetes_version({"KUBERNETES_VERSION": "v1.34.1"}, "p") == "v1.34.1"
    assert archives.kubernetes_version({"KUBERNETES_VERSION": "1.34.1"}, "p") == "v1.34.1"


def test_an_archive_without_kubernetes_version_is_named_with_the_fix():
    with pytest.raises(UpgradeError) as err:
        archives.kubernetes_version({"VERSION": "0.1.0"}, "/srv/kubesalt/a/product.txt")
    assert str(err.value) == (
        "/srv/kubesalt/a/product.txt: no KUBERNETES_VERSION: this archive does not say which "
        "Kubernetes release it carries (it was built before iso/build recorded it); rebuild "
        "it with a current iso/build"
    )


def test_a_kubernetes_version_that_is_not_one_is_refused():
    with pytest.raises(UpgradeError, match=r"KUBERNETES_VERSION is '1\.34', not a Kubernetes"):
        archives.kubernetes_version({"KUBERNETES_VERSION": "1.34"}, "p")


def test_minor_reads_major_and_minor():
    assert archives.minor("v1.33.5") == (1, 33)
    assert archives.minor("1.34.0") == (1, 34)


def test_the_image_tags_are_those_of_the_release_product_txt_names():
    tags = archives.image_tags(IMAGES, "v1.33.5", "wheel:images.yaml")
    assert tags == {
        "kube-apiserver": "v1.33.5",
        "kube-controller-manager": "v1.33.5",
        "kube-scheduler": "v1.33.5",
        "kube-proxy": "v1.33.5",
        "etcd": "3.5.21-0",
        "pause": "3.10",
        "coredns": "v1.12.0",
        "kube-router": "v2.11.1",
    }


def test_images_of_another_release_than_product_txt_says_are_refused():
    with pytest.raises(UpgradeError) as err:
        archives.image_tags(IMAGES, "v1.35.0", "w.whl:kubesalt/data/images.yaml")
    assert str(err.value) == (
        "w.whl:kubesalt/data/images.yaml has no images of Kubernetes v1.35.0 (it has v1.33.5, "
        "v1.34.2), but product.txt says KUBERNETES_VERSION=v1.35.0; rebuild the archive with "
        "iso/build"
    )


def test_an_images_yaml_of_several_releases_gives_the_one_product_txt_names():
    """kubesalt's own images.yaml carries 1.33 and 1.34: an archive of either is read."""
    data = yaml.safe_load((ROOT / "src/kubesalt/data/images.yaml").read_text())
    assert archives.image_tags(data, "v1.34.2", "images.yaml")["etcd"] == "3.6.5-0"
    assert archives.image_tags(data, "v1.34.2", "images.yaml")["kube-apiserver"] == "v1.34.2"
    assert archives.image_tags(data, "v1.33.5", "images.yaml")["etcd"] == "3.5.21-0"


def test_the_salt_version_is_the_salt_wheels_of_the_lock():
    lock = {
        "wheels": [{"name": "kubesalt", "version": "0.2.0"}, {"name": "salt", "version": "3008.3"}]
    }
    assert archives.salt_version(lock, "lock") == "3008.3"
    with pytest.raises(UpgradeError, match="lock: lists 0 Salt wheel"):
        archives.salt_version({"wheels": []}, "lock")


def test_read_versions_reads_the_three_files_of_an_archive(tmp_path):
    found = make_archive(tmp_path, "0.2.0", kubernetes="v1.34.1", etcd="3.5.24-0", salt="3008.4")
    versions = archives.read_versions(found)
    assert (versions.kubesalt, versions.kubernetes, versions.salt, versions.etcd) == (
        "0.2.0", "v1.34.1", "3008.4", "3.5.24-0")  # fmt: skip
    assert versions.images == {name: entry["tag"] for name, entry in
                               images_of("v1.34.1", "3.5.24-0")["images"].items()}  # fmt: skip
    assert versions.images["kube-apiserver"] == "v1.34.1"


def test_read_versions_names_the_archive_without_kubernetes_version(tmp_path):
    found = make_archive(tmp_path, "0.1.0", kubernetes="")
    with pytest.raises(UpgradeError, match=f"{found.root}/product.txt: no KUBERNETES_VERSION"):
        archives.read_versions(found)


def test_a_damaged_wheel_is_named(tmp_path):
    found = make_archive(tmp_path, "0.2.0")
    wheel = next((tmp_path / "kubesalt-0.2.0" / "wheels").iterdir())
    wheel.write_bytes(b"not a zip")
    with pytest.raises(
        UpgradeError, match=r"kubesalt/data/images.yaml: cannot be read .*copy the ISO again"
    ):
        archives.read_versions(found)


def test_versions_sort_by_their_numbers_not_as_text():
    assert archives.version_key("0.10.0") > archives.version_key("0.9.3")
    assert archives.version_key("1.0.0+lab") > archives.version_key("1.0.0")


def test_the_upgrade_target_is_the_registered_archive_the_script_comes_from(tmp_path):
    old, new = make_archive(tmp_path, "0.1.0"), make_archive(tmp_path, "0.2.0")
    assert archives.target_archive("upgrade", [old, new], "0.2.0") == new
    assert archives.target_archive("upgrade", [old], "0.2.0") is None


def test_the_downgrade_target_is_the_newest_registered_archive_older_than_the_script(tmp_path):
    found = [make_archive(tmp_path, v) for v in ("0.9.0", "0.10.0", "0.8.0", "0.11.0")]
    assert archives.target_archive("downgrade", found, "0.10.0").version == "0.9.0"
    assert archives.target_archive("downgrade", found, "0.8.0") is None
