"""Text from outside, shown literally in Markdown (``docs/guarantees.md``, "Escaping").

Architecture names a plugin registered, a model's error message, strings read
from a results or accuracy file, paths: in Markdown such text goes through
:func:`md_escape` (table cells and inline text), :func:`md_code` (an inline code
span) or :func:`md_fence` (a fenced block), so that it can neither add a table
row or cell nor become HTML, a link, an image, code or emphasis;
:func:`markdown_table` escapes every cell itself. :func:`one_line` is the first
step of each, and of the terminal's tables (:mod:`bench.report.tables`): it
replaces control characters (a terminal escape sequence in an error message
must not reach the terminal) and bidirectional-override characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

__all__ = ["markdown_table", "md_code", "md_escape", "md_fence", "md_image", "one_line"]

_BREAKS = re.compile("\r\n|[\n\r\t\v\f\x1c-\x1f\x85\u2028\u2029]")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(value: object) -> str:
    """``str(value)`` on one line: line breaks and tabs become spaces, other control characters ``\\xNN``.

    Bidirectional overrides (which could make a name read as another) become U+FFFD.
    """
    text = str(value)
    if text.isprintable():
        return text
    text = _BREAKS.sub(" ", text)
    return "".join(
        f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else "\ufffd" if c in _BIDI else c for c in text
    )


def _is_space(c: str) -> bool:
    return c.isspace()


def _is_punct(c: str) -> bool:
    return unicodedata.category(c)[0] in "PS"


def _delimiter_is_inert(run: str, before: str | None, after: str | None) -> bool:
    """Whether a run of ``*``, ``_`` or ``~`` can neither open nor close emphasis (CommonMark flanking rules).

    ``before``/``after``: the neighbouring characters; None where the run touches
    the edge of the escaped text and what lies beyond is not known.
    """
    if before is None or after is None:
        # Only an intraword underscore is inert whatever surrounds the text.
        return False
    left = not _is_space(after) and (not _is_punct(after) or _is_space(before) or _is_punct(before))
    right = not _is_space(before) and (not _is_punct(before) or _is_space(after) or _is_punct(after))
    if run[0] == "_":
        opens = left and (not right or _is_punct(before))
        closes = right and (not left or _is_punct(after))
        return not (opens or closes)
    return not (left or right)


_DELIMITERS = re.compile(r"\*+|_+|~+")
_BLOCK_START = re.compile(r"^(?:#{1,6}(?=\s|$)|[-+](?=\s|$)|(?:-[ \t]*){3,}$|\[)")
"""What begins a heading, a list item, a thematic break or a link reference definition at the start of a line."""
_LIST_NUMBER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def md_escape(value: object, *, cell: bool = False) -> str:
    """``value`` as Markdown text that renders literally (GitHub Flavored Markdown, which allows HTML).

    Line breaks become spaces; ``\\``, ``|``, backticks and ``$`` (math) are
    backslash-escaped; ``<``, ``>`` and an ``&`` that could start an entity
    become entities; ``]`` before ``(`` or ``[`` (a link or image) is escaped,
    and so is any ``*``, ``_`` or ``~`` that could open or close emphasis or
    strike-through. What cannot do harm is left as it is, so that ordinary
    names, numbers and sentences (``r2plus1d_18``, ``16x112x112``, ``Carreira &
    Zisserman``, ``[P]``) come out unchanged.

    Args:
        cell: The value is a whole table cell (its own inline context, between
            ``" | "``). Otherwise it may stand anywhere in a line, also at its
            start: a leading block marker (``# ``, ``- ``, ``+ ``, ``1. ``,
            ``---``, ``[``) is escaped, and so is a delimiter at its edges.
            Never put ``(`` or ``[`` right after the escaped text.
    """
    return _md_escape(value, cell=cell, brackets=False)


def _md_escape(value: object, *, cell: bool, brackets: bool) -> str:
    """:func:`md_escape`; ``brackets``: escape every ``[`` and ``]`` (inside a link's or image's text)."""
    text = one_line(value).strip()
    if not text:
        return text
    keep: set[int] = set()
    for m in _DELIMITERS.finditer(text):
        before: str | None
        after: str | None
        if cell:
            before = text[m.start() - 1] if m.start() else " "
            after = text[m.end()] if m.end() < len(text) else " "
        else:
            before = text[m.start() - 1] if m.start() else None
            after = text[m.end()] if m.end() < len(text) else None
        if m.group()[0] == "_" and before is not None and after is not None and before.isalnum() and after.isalnum():
            keep.update(range(m.start(), m.end()))  # snake_case: never emphasis
        elif _delimiter_is_inert(m.group(), before, after):
            keep.update(range(m.start(), m.end()))
    out = []
    for i, c in enumerate(text):
        nxt = text[i + 1] if i + 1 < len(text) else None
        if c == "<":
            out.append("&lt;")
        elif c == ">":
            out.append("&gt;")
        elif c == "&" and nxt is not None and (nxt.isalnum() or nxt == "#"):
            out.append("&amp;")
        elif c == "[" and brackets:
            out.append("\\[")
        elif c == "]" and (brackets or nxt in ("(", "[")):
            out.append("\\]")  # a link or an image needs ]( or ][
        elif c in "\\|`$" or (c in "*_~" and i not in keep):
            out.append("\\" + c)
        else:
            out.append(c)
    escaped = "".join(out)
    if not cell:
        # At the start of a line (a list item) these would begin a heading, list, quote or link definition.
        escaped = "\\" + escaped if _BLOCK_START.match(escaped) else _LIST_NUMBER.sub(r"\1\\\2", escaped)
    return escaped


def md_code(value: object) -> str:
    """``value`` as an inline code span (for paths), outside tables: a run of backticks in it cannot close it."""
    text = one_line(value)
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = not text.strip() or text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " ")
    return f"{fence} {text} {fence}" if pad else f"{fence}{text}{fence}"


def md_fence(text: str) -> list[str]:
    """Lines of a fenced code block holding ``text`` (e.g. a command): the fence is longer than any backtick run."""
    lines = [one_line(line) for line in text.split("\n")]
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def md_image(alt: object, target: str) -> str:
    """``![alt](target)``: the alt text escaped (brackets too), the target percent-encoded."""
    return f"![{_md_escape(alt, cell=False, brackets=True)}]({quote(target, safe='/')})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[str] = ()) -> list[str]:
    """Lines of a Markdown table; columns named in ``left`` are left-aligned, the others right-aligned.

    Every cell is escaped here (:func:`md_escape`), so pass raw text, not Markdown.
    """
    lines = [
        "| " + " | ".join(md_escape(h, cell=True) for h in header) + " |",
        "|" + "|".join("---" if h in left else "---:" for h in header) + "|",
    ]
    lines += ["| " + " | ".join(md_escape(c, cell=True) for c in row) + " |" for row in rows]
    return lines
