"""The documentation stands alone (docs/README.md).

No tracked file cites a file outside the repository, and every relative link of docs/*.md and
README.md points to a file of the repository that exists (and, with `#anchor`, to a heading of
it that exists).
"""

import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Design notes kept outside the repository, which files used to cite. What they said that still
# holds is in docs/ now (architecture.md, lab.md, kubeadm-differences.md, pki.md): cite those.
# Each name is joined from pieces so that neither this file nor a grep for them finds it here.
OUTSIDE_CITATIONS = tuple(
    "".join(pieces)
    for pieces in (
        ("../", "sha", "red"),
        ("/work/", "sha", "red"),
        ("sha", "red/reference"),
        ("reference/", "kubeadm"),
        ("reference/", "salt"),
        ("DESIGN", ".md"),
        ("STYLE", ".md"),
        ("lab-", "host.md"),
        ("kubeadm-1.", "33.md"),
        ("salt-3008", ".md"),
        ("reference ", "sheet"),
    )
)
# What .gitignore keeps out, for when git cannot list the files (no git, or a checkout owned
# by another user than the one running the tests).
UNTRACKED_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "build",
    "dist",
    "out",
}
UNTRACKED_SUFFIXES = (".iso", ".pyc")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def tracked_files() -> list[pathlib.Path]:
    """The files of the repository: those git tracks, and new ones it does not ignore; without
    git, every file outside caches and virtualenvs."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        listing = subprocess.run(command, cwd=ROOT, capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return list(_walk())
    return [ROOT / name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def _walk():
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in UNTRACKED_DIRS and not d.endswith(".egg-info")]
        for name in files:
            if name != ".git" and not name.endswith(UNTRACKED_SUFFIXES):  # .git: a worktree's link
                yield pathlib.Path(directory) / name


def citations(text: str) -> list[tuple[int, str]]:
    """(line number, cited name) of every citation of a file outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        lowered = line.lower()
        found += [(number, name) for name in OUTSIDE_CITATIONS if name.lower() in lowered]
    return found


def test_the_scan_covers_the_repository():
    names = {path.relative_to(ROOT).as_posix() for path in tracked_files()}
    assert {"README.md", "docs/architecture.md", "salt/top.sls", "tests/unit/test_docs.py"} <= names
    assert not any(name.startswith((".git/", ".venv/")) for name in names)


def test_without_git_the_scan_walks_the_tree(monkeypatch):
    def no_git(*args, **kwargs):
        raise OSError("git: not found")

    monkeypatch.setattr(subprocess, "run", no_git)
    names = {path.relative_to(ROOT).as_posix() for path in tracked_files()}
    assert {"README.md", "docs/architecture.md", "salt/top.sls", "tests/unit/test_docs.py"} <= names
    assert "iso/build" in names  # a file named like an ignored directory
    assert not any(part in UNTRACKED_DIRS for name in names for part in name.split("/")[:-1])


@pytest.mark.parametrize("name", OUTSIDE_CITATIONS)
def test_a_citation_is_found_in_any_case(name):
    text = f"first line\nsee {name.upper()} for why\n"
    assert (2, name) in citations(text)


def test_no_file_cites_a_file_outside_the_repository():
    problems = []
    for path in tracked_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, name in citations(text):
            problems.append(f"{path.relative_to(ROOT)}:{number}: cites {name!r}")
    assert not problems, (
        "these lines cite files outside the repository; cite the docs/ page that holds the fact "
        "(docs/architecture.md, docs/lab.md, docs/kubeadm-differences.md, docs/pki.md, ...), "
        "or state the fact where it is used:\n" + "\n".join(problems)
    )


# --- relative links ------------------------------------------------------------------------


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, CODE_SPAN.sub("", line)


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link and image, code excluded."""
    return [
        (number, m.group(1)) for number, line in _prose_lines(text) for m in LINK.finditer(line)
    ]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text; a repeated heading gets -1, -2, ..."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def _anchors_of(path: pathlib.Path) -> set[str]:
    return anchors(path.read_text(encoding="utf-8"))


def broken_links(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    """Each relative link of `path` that leaves `root`, names a missing file, or names a
    heading its target does not have."""
    problems = []
    for number, target in links(path.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue  # https:, mailto:: not a file of the repository
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: link {target!r}"
        if not resolved.is_relative_to(root):
            problems.append(f"{where} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{where}: {resolved.relative_to(root)} does not exist")
        elif fragment and resolved.suffix == ".md" and fragment not in _anchors_of(resolved):
            problems.append(f"{where}: {resolved.relative_to(root)} has no heading #{fragment}")
    return problems


def markdown_pages() -> list[pathlib.Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_links_are_found_outside_code_only():
    text = 'See [a](a.md), ![b](img/b.png "B"), [`c`](c.md).\n`[no](x.md)`\n```\n[no](y.md)\n```\n'
    assert links(text) == [(1, "a.md"), (1, "img/b.png"), (1, "c.md")]


def test_anchors_follow_githubs_rule():
    text = (
        "# The lab (`scripts/lab.sh`)\n## Salt's keys, SSH\n## Salt's keys, SSH\n```\n# no\n```\n"
    )
    assert anchors(text) == {"the-lab-scriptslabsh", "salts-keys-ssh", "salts-keys-ssh-1"}


def test_a_broken_link_is_reported(tmp_path):
    root = tmp_path.resolve()
    (root / "docs").mkdir()
    (root / "docs" / "other.md").write_text("# Other page\n")
    page = root / "docs" / "page.md"
    page.write_text(
        "[ok](other.md#other-page) [gone](missing.md) [bad](other.md#nope) "
        "[out](../../elsewhere.md) [web](https://example.org/x.md) [self](#top)\n# Top\n"
    )
    assert broken_links(page, root) == [
        "docs/page.md:1: link 'missing.md': docs/missing.md does not exist",
        "docs/page.md:1: link 'other.md#nope': docs/other.md has no heading #nope",
        "docs/page.md:1: link '../../elsewhere.md' leaves the repository",
    ]


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_a_file_that_exists(page):
    assert not broken_links(page), "\n".join(broken_links(page))


def test_the_pages_have_relative_links_to_check():
    assert sum(len(links(page.read_text(encoding="utf-8"))) for page in markdown_pages()) > 50
