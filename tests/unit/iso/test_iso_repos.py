"""apt and yum metadata: Packages paragraphs, the Release file, index parsing."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime

from kubesalt_isobuild import debs, repos, rpms
from kubesalt_isobuild.model import Source


def test_packages_paragraph_puts_the_file_fields_last_and_replaces_stale_ones():
    fields = {
        "Package": "a",
        "Version": "1",
        "Architecture": "amd64",
        "SHA256": "stale",
        "Size": "1",
    }
    text = repos.packages_paragraph(fields, "pool/a_1_amd64.deb", b"data")
    assert text == (
        "Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/a_1_amd64.deb\nSize: 4\n"
        f"MD5sum: {hashlib.md5(b'data').hexdigest()}\nSHA256: {hashlib.sha256(b'data').hexdigest()}\n"
    )


def test_release_file_lists_each_index_with_its_size_and_hashes():
    date = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    files = {"main/binary-amd64/Packages": b"x" * 10, "main/binary-amd64/Packages.gz": b"yy"}
    text = repos.release_file(files, date, ["amd64", "all"], "1.0")
    lines = text.splitlines()
    assert lines[:9] == [
        "Origin: kubesalt",
        "Label: kubesalt",
        "Suite: kubesalt",
        "Codename: kubesalt",
        "Version: 1.0",
        "Date: Tue, 04 Mar 2025 05:06:07 GMT",
        "Architectures: amd64 all",
        "Components: main",
        "Description: kubesalt offline package repository",
    ]
    sha = lines[lines.index("SHA256:") + 1 :]
    assert sha == [
        f" {hashlib.sha256(b'x' * 10).hexdigest()} 10 main/binary-amd64/Packages",
        f" {hashlib.sha256(b'yy').hexdigest()}  2 main/binary-amd64/Packages.gz",
    ]
    assert "MD5Sum:" in lines


def test_release_parses_back_as_deb822():
    text = repos.release_file({"a": b"1"}, datetime(2025, 1, 1, tzinfo=UTC), ["amd64"], "2")
    (para,) = debs.parse_deb822(text)
    assert para["Suite"] == "kubesalt"
    assert para["SHA256"].strip().endswith(" 1 a")


def test_gzip_output_is_reproducible():
    assert repos.gzip_bytes(b"abc" * 100) == repos.gzip_bytes(b"abc" * 100)
    assert gzip.decompress(repos.gzip_bytes(b"abc")) == b"abc"


def test_parse_deb822_handles_continuations_and_blank_lines():
    text = "Package: a\nDescription: short\n long line\n .\n\n\nPackage: b\nVersion: 2\n"
    assert debs.parse_deb822(text) == [
        {"Package": "a", "Description": "short\nlong line\n."},
        {"Package": "b", "Version": "2"},
    ]


def test_packages_paragraph_keeps_multi_line_fields_indented():
    """Regression: unindented Description lines made apt ignore the package."""
    fields = {"Package": "a", "Version": "1:2", "Description": "short\nlong line\n."}
    text = repos.packages_paragraph(fields, "pool/a_2_amd64.deb", b"deb")
    assert "Description: short\n long line\n .\n" in text
    (para,) = debs.parse_deb822(text)
    assert para["Description"] == fields["Description"]
    assert para["Filename"] == "pool/a_2_amd64.deb"


def test_deb_file_names_drop_the_epoch_as_debian_pools_do():
    assert (
        debs.deb_filename("keepalived", "1:2.2.7-1+b2", "amd64")
        == "keepalived_2.2.7-1+b2_amd64.deb"
    )


def test_index_urls_of_a_suite_and_of_a_flat_repository():
    suite = Source(
        "d", "apt", url="http://h/debian/", suite="bookworm", components=("main", "contrib")
    )
    assert debs.index_urls(suite, "amd64") == [
        "http://h/debian/dists/bookworm/main/binary-amd64/Packages",
        "http://h/debian/dists/bookworm/contrib/binary-amd64/Packages",
    ]
    flat = Source("k", "apt", url="https://pkgs.k8s.io/core:/stable:/v1.33/deb", suite="/")
    assert flat.flat
    assert debs.index_urls(flat, "amd64") == [
        "https://pkgs.k8s.io/core:/stable:/v1.33/deb/Packages"
    ]


REPOMD = b"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <data type="filelists"><location href="repodata/f.xml.gz"/></data>
  <data type="primary">
    <checksum type="sha256">abc</checksum>
    <location href="repodata/p-primary.xml.gz"/>
  </data>
</repomd>"""

PRIMARY = b"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"
 packages="2">
<package type="rpm">
  <name>kubelet</name><arch>x86_64</arch>
  <version epoch="0" ver="1.33.5" rel="150500.1.1"/>
  <checksum type="sha256" pkgid="YES">1111</checksum>
  <location href="rpm/kubelet-1.33.5-150500.1.1.x86_64.rpm"/>
</package>
<package type="rpm">
  <name>shadow</name><arch>x86_64</arch>
  <version epoch="2" ver="4.9" rel="8.el9"/>
  <checksum type="sha256" pkgid="YES">2222</checksum>
  <location href="Packages/s/shadow-utils.rpm"/>
</package>
</metadata>"""


def test_repomd_points_at_primary():
    assert rpms.primary_location(REPOMD) == ("repodata/p-primary.xml.gz", "abc")


def test_primary_is_indexed_by_name_epoch_version_release_and_arch():
    table = rpms.parse_primary(PRIMARY)
    assert table[("kubelet", "1.33.5-150500.1.1", "x86_64")] == {
        "href": "rpm/kubelet-1.33.5-150500.1.1.x86_64.rpm",
        "sha256": "1111",
    }
    assert ("shadow", "2:4.9-8.el9", "x86_64") in table


def test_rpm_file_names_and_compressed_metadata():
    assert rpms.rpm_filename("shadow", "2:4.9-8.el9", "x86_64") == "shadow-4.9-8.el9.x86_64.rpm"
    assert rpms.decompress("p.xml.gz", gzip.compress(b"<x/>")) == b"<x/>"
    assert rpms.decompress("p.xml", b"<x/>") == b"<x/>"
