"""An mkdocs hook: links from these pages to repository files outside ``docs/``.

The pages link to committed results (``../reports/benchmarks/static_speed.md``,
``../reports/report/tradeoff_gmacs.png``) and to ``../README.md`` by their
relative paths, which resolve in GitHub's file browser. mkdocs knows only
``docs/``, so it would call every such link "not found" and ``--strict`` would
fail on them, or, with that warning turned off, miss broken links inside
``docs/`` too. This hook handles exactly the links that leave ``docs/``:

- a target the repository lacks is a warning naming the page and the link, which
  ``mkdocs build --strict`` turns into a failure (as mkdocs does for a broken
  link inside ``docs/``, which this hook leaves to mkdocs);
- a target the repository has is copied into the site, as is, under
  ``repository/``, and the link points to the copy.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.plugins.repository_links")

COPIES = "repository"
"""Where the site keeps its copies of the repository's files."""

_LINK = re.compile(r"(\]\()([^)\s#]+)([^)]*\))")
"""An inline link or image, ``[text](target)`` or ``![alt](target "title")``: the target without its anchor."""


class _Copy(File):
    """A repository file copied into the site as is (a Markdown file too: it is not rendered as a page)."""

    def is_documentation_page(self) -> bool:
        return False

    def is_static_page(self) -> bool:
        return False


def _outside(page_uri: str, target: str) -> str | None:
    """The repository path of a relative link that leaves ``docs/``; None for any other link."""
    if re.match(r"^[a-z][a-z0-9+.-]*:|^/", target):
        return None
    path = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), target))
    return None if path == "docs" or path.startswith("docs/") else path


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_files(files: Files, config: Any) -> Files:
    """Add a copy of every existing repository file the pages link to."""
    root = _root(config)
    wanted: set[str] = set()
    for page in files.documentation_pages():
        for match in _LINK.finditer(page.content_string):
            path = _outside(page.src_uri, match.group(2))
            if path is not None and not path.startswith("../") and (root / path).is_file():
                wanted.add(path)
    for path in sorted(wanted):
        copy = _Copy.generated(config, f"{COPIES}/{path}", abs_src_path=str(root / path))
        files.append(copy)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links that leave ``docs/`` at the site's copies; warn about those whose target is missing."""
    root = _root(config)

    def relink(match: re.Match[str]) -> str:
        path = _outside(page.file.src_uri, match.group(2))
        if path is None:
            return match.group(0)
        if path.startswith("../") or not (root / path).is_file():
            log.warning(
                f"Doc file '{page.file.src_uri}' links to '{match.group(2)}', but the repository has no file '{path}'."
            )
            return match.group(0)
        copy = posixpath.relpath(f"{COPIES}/{path}", posixpath.dirname(page.file.src_uri) or ".")
        return f"{match.group(1)}{copy}{match.group(3)}"

    return _LINK.sub(relink, markdown)
