"""The README's links resolve: to files in the repository and, for a docs page, to one of its headings.

The pages under docs/ are checked by `mkdocs build --strict` in `.ci/run` (docs/_hooks.py for their links to
repository files outside docs/); the README is not part of the site, so its links are checked here.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's (and mkdocs' toc) anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _relative_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", t)]


def test_slug_of_a_heading():
    assert _slug("The FLOP convention") == "the-flop-convention"
    assert _slug("Profile: `vbench list` and `vbench profile`") == "profile-vbench-list-and-vbench-profile"


def test_the_readme_links_resolve():
    links = _relative_links((ROOT / "README.md").read_text())
    assert "docs/columns.md" in links and "docs/design.md#the-flop-convention" in links
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README.md links to {link}, which the repository lacks"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", target.read_text(), flags=re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"README.md links to {link}: no such heading"


def test_the_readme_links_to_every_docs_page():
    links = {link.partition("#")[0] for link in _relative_links((ROOT / "README.md").read_text())}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md") if p.name != "index.md"}
    assert pages <= links, sorted(pages - links)


def test_every_exit_code_is_documented_and_no_command_spells_one_as_a_number():
    from bench.errors import ExitCode

    text = (ROOT / "docs" / "guarantees.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(n) for n in re.findall(r"\*\*(\d+)\*\*", section)}
    assert documented == {c.value for c in ExitCode if c != ExitCode.INTERRUPTED}
    assert "128 + the signal" in section
    literal = re.compile(r"(?:typer\.Exit\(code=|sys\.exit\(|os\._exit\()\d")
    spelled = [
        f"{path.name}:{n}"
        for path in sorted((ROOT / "bench").glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert spelled == []
