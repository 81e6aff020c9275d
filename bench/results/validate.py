"""Reading files that vbench did not necessarily write: results, settings, and the checks every reader uses.

Everything read from disk is checked here (the report's other inputs in
:mod:`bench.results.accuracy`, :mod:`bench.results.evaluation`, :mod:`bench.results.breakdowns`, with the checks of this module) before any other module sees it, so
that a malformed, wrongly typed or hostile file is one line and exit code 2
(:class:`~bench.errors.UsageError`), never a traceback or a wrong number:

- files are read with :func:`bench.results.io.read_text`: regular files only (a
  FIFO or ``/dev/zero`` is refused before it is opened), at most a size cap, as
  UTF-8 with or without a byte-order mark (Excel writes one);
- :func:`parse_json` bounds the nesting depth before parsing and refuses
  integers that do not fit a float;
- :func:`load_results_doc` checks every row of a ``results.json`` column by
  column against :mod:`bench.results.schema`, and the environment facts that other
  modules use;
- the typed checks (:func:`is_name`, :func:`plain_error` ...) serve every reader of such files.

Messages are one line; values from a file are shown with :func:`show` (quoted,
escaped, truncated) and paths with :func:`~bench.results.io.show_path`, so that no file can break a message over lines.
Plain values only: this module imports no torch itself.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from itertools import accumulate
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.columns import REGISTRY, REQUIRED_COLUMNS, Kind
from bench.results.io import RESULTS_CAP, is_utf8, read_text, show_path
from bench.results.io import has_control as _has_control
from bench.results.records import STATUSES, Row
from bench.results.schema import SCHEMA_VERSION

__all__ = [
    "MAX_DEPTH",
    "ROW_CHECKS",
    "check_path",
    "check_results_doc",
    "is_count_or_none",
    "is_kwargs_text",
    "is_name",
    "is_number",
    "is_positive_int",
    "load_results_doc",
    "parse_json",
    "plain_error",
    "show",
]

MAX_DEPTH = 32
"""Deepest JSON nesting accepted; a results file nests four levels deep."""
_MAX_DIGITS = 308
"""Integers with more digits may not fit a float (10**308 does; 10**309 does not)."""
_SHOW_MAX = 40

# ---------------------------------------------------------------- showing values in one line


class _HugeInt:
    """What the JSON reader makes of an integer literal too large for a float (refused where it is found)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _clip(text: str, limit: int = _SHOW_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any) -> str:
    """A value from a file as one short line: strings quoted and escaped, numbers and lists in JSON's spelling."""
    if isinstance(value, str):
        return _clip(repr(value[:100]))
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 1000:  # str() of a huge int is slow, or refused beyond 4300 digits
            return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
        return _clip(str(value))
    if isinstance(value, float):
        return json.dumps(value)  # NaN, Infinity, -Infinity as JSON spells them
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"a list of {len(value)} items"
        return _clip("[" + ", ".join(show(v) for v in value) + "]")
    if isinstance(value, Mapping):
        return f"an object with {len(value)} keys" if value else "{}"
    return _clip(repr(value) if isinstance(value, _HugeInt) else type(value).__name__)


# ---------------------------------------------------------------- paths typed by the user

PATH_MAX = 4096
"""Longest path (bytes) the commands accept (Linux's PATH_MAX)."""


def _name_max(text: str) -> int:
    """NAME_MAX of the file system the path would be on: that of its nearest existing folder (255 if unknown)."""
    folder = os.path.abspath(text)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_path(value: str | os.PathLike[str], what: str) -> None:
    """A path the user typed that no system call can take: one line (exit code 2) before any work.

    Each name in it must fit the file system's NAME_MAX, the whole PATH_MAX, and it may hold no NUL
    (otherwise every command would fail later, with ``ENAMETOOLONG`` or ``ValueError``, as an internal error).

    Raises:
        UsageError: naming the option (``what``) and the name that is too long.
    """
    text = os.fspath(value)
    if "\0" in text:
        raise UsageError(f"{what} {show_path(_clip(text, 60))}: a path cannot hold a NUL character")
    raw = os.fsencode(text)
    if len(raw) >= PATH_MAX:
        raise UsageError(f"{what}: the path is {len(raw)} bytes long; at most {PATH_MAX - 1} are allowed (PATH_MAX)")
    limit = _name_max(text)
    for name in raw.split(b"/"):
        if len(name) > limit:
            shown = os.fsdecode(name[:20]) + "..."
            raise UsageError(
                f"{what}: the name {show_path(shown)} in the path is {len(name)} bytes long; "
                f"at most {limit} are allowed (NAME_MAX)"
            )


# ---------------------------------------------------------------- reading


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
"""A JSON string, or what is left of the text after an unterminated one: a match never fails once
started, so that no text (``"\\"\\"\\"...``) makes the scan quadratic."""
_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _depth(text: str) -> int:
    """The deepest nesting of JSON text, counted without recursion (strings skipped)."""
    brackets = _BRACKETS.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _parse_int(text: str) -> int | _HugeInt:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= _MAX_DIGITS else _HugeInt(digits)


def parse_json(text: str, fail: str) -> Any:
    """JSON text parsed with its depth bounded; ``fail`` starts the message of every error.

    ``NaN``, ``Infinity`` and float literals beyond range come back as floats
    and integers too large for a float as a placeholder, so that the typed
    checks can name the field that holds them.

    Raises:
        UsageError: not JSON, or nested deeper than :data:`MAX_DEPTH`.
    """
    if _depth(text) > MAX_DEPTH:
        raise UsageError(f"{fail}: nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise UsageError(f"{fail}: {e.msg}: line {e.lineno} column {e.colno} (char {e.pos})") from None
    except RecursionError:
        raise UsageError(f"{fail}: nested too deeply") from None
    except ValueError as e:  # pragma: no cover - a limit of the int parser
        raise UsageError(f"{fail}: {_clip(str(e).splitlines()[0] if str(e) else 'bad value', 80)}") from None


# ---------------------------------------------------------------- typed checks


def _is_int(v: Any) -> bool:
    """An integer that fits a float (documents parsed elsewhere may hold any Python int)."""
    return isinstance(v, int) and not isinstance(v, bool) and v.bit_length() <= 1023


def is_number(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def is_name(v: Any) -> bool:
    return isinstance(v, str) and v != "" and not _has_control(v) and is_utf8(v)


def _name_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not _has_control(v) and is_utf8(v))


def _text_or_none(v: Any) -> bool:
    return v is None or (isinstance(v, str) and is_utf8(v))


def is_positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def is_count_or_none(v: Any) -> bool:
    return v is None or (_is_int(v) and v >= 0)


def _amount_or_none(v: Any) -> bool:
    return v is None or (is_number(v) and v >= 0)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _flag_or_none(v: Any) -> bool:
    return v is None or isinstance(v, bool)


def _status(v: Any) -> bool:
    return v in STATUSES and isinstance(v, str)


def is_kwargs_text(v: Any) -> bool:
    if v is None or v == "" or v == "{}":
        return True
    if not isinstance(v, str) or _has_control(v) or not is_utf8(v):
        return False
    try:
        parsed = parse_json(v, "arch_kwargs")
    except UsageError:
        return False
    return isinstance(parsed, dict) and plain_error(parsed, "") is None


Check = tuple[Callable[[Any], bool], str]

_NAME: Check = (is_name, "a non-empty string on one line")
_NAME_OR_NONE: Check = (_name_or_none, "a string on one line or null")
_TEXT_OR_NONE: Check = (_text_or_none, "a string or null")
_POSITIVE: Check = (is_positive_int, "a positive integer")
_COUNT: Check = (is_count_or_none, "a non-negative integer or null")
_AMOUNT: Check = (_amount_or_none, "a finite non-negative number or null")
_FLAG: Check = (_flag, "true or false")
_FLAG_OR_NONE: Check = (_flag_or_none, "true, false or null")

_KIND_CHECKS: dict[Kind, Check] = {
    "name": _NAME,
    "name?": _NAME_OR_NONE,
    "text?": _TEXT_OR_NONE,
    "positive": _POSITIVE,
    "count?": _COUNT,
    "amount?": _AMOUNT,
    "flag": _FLAG,
    "flag?": _FLAG_OR_NONE,
    "status": (_status, f"one of {', '.join(STATUSES)}"),
    "json": (is_kwargs_text, "a JSON object as a string, such as '{\"depth\": 50}'"),
}

ROW_CHECKS: dict[str, Check] = {c.name: _KIND_CHECKS[c.kind] for c in REGISTRY if c.stored}
"""The type of every column vbench writes (its ``kind`` in the column registry, :mod:`bench.results.columns`)."""

_ENV_CHECKS: dict[str, Check] = {
    **{k: _NAME_OR_NONE for k in ("vbench_version", "git_sha", "torch_version", "python_version", "platform",
                                  "cpu_name", "device", "device_name", "cuda_version", "device_capability")},
    **{k: _NAME_OR_NONE for k in ("host", "started_at", "finished_at")},
    **{k: _COUNT for k in ("cpu_count", "torch_threads", "cudnn_version", "device_memory_mib", "max_memory")},
    "cudnn_benchmark": _FLAG_OR_NONE,
}  # fmt: skip
"""Environment facts that compare and merge read (they must be plain, hashable values)."""


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool)) or _is_int(v) or is_number(v)


def plain_error(value: Any, where: str) -> str | None:
    """Where in ``value`` a number is not finite, an integer is too large or a string is not Unicode, if anywhere."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                if not is_utf8(k):
                    return f"{at} has a key that is not valid Unicode: {show(k)}"
                stack.append((item, f"{at}.{k}" if re.fullmatch(r"[\w-]{1,40}", k) else f"{at}[{show(k)}]"))
        elif isinstance(v, list):
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(v))
        elif isinstance(v, _HugeInt) or (isinstance(v, int) and v.bit_length() > 1023):
            return f"{at} holds {show(v)}, too large for a float"
        elif isinstance(v, float) and not math.isfinite(v):
            return f"{at} must be finite; got {show(v)}"
        elif isinstance(v, str) and not is_utf8(v):
            return f"{at} is not valid Unicode text; got {show(v)}"
    return None


def _row_label(i: int, row: Mapping[str, Any]) -> str:
    arch = row.get("arch")
    return f"row {i} ({_clip(arch)})" if isinstance(arch, str) and is_name(arch) else f"row {i}"


def _check_row(p: str, i: int, row: Any) -> None:
    if not isinstance(row, dict):
        raise UsageError(f"{p}: row {i} must be an object; got {show(row)}")
    label = _row_label(i, row)
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise UsageError(f"{p}: {label} lacks required columns: {', '.join(missing)}")
    for column, value in row.items():
        if not is_utf8(column):
            raise UsageError(f"{p}: {label}: a column name is not valid Unicode: {show(column)}")
        check = ROW_CHECKS.get(column)
        if check is not None:
            if not check[0](value):
                raise UsageError(f"{p}: {label}: {show(column)} must be {check[1]}; got {show(value)}")
        elif column == "samples_ms":
            _check_samples(p, label, value)
        else:  # a column of a newer vbench or of the user's: plain values only
            problem = plain_error(value, show(column))
            if problem:
                raise UsageError(f"{p}: {label}: {problem}")
            if not (_scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))):
                raise UsageError(
                    f"{p}: {label}: {show(column)} must be a plain value or a list of them; got {show(value)}"
                )


def _check_samples(p: str, label: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise UsageError(f"{p}: {label}: 'samples_ms' must be a list of finite non-negative numbers; got {show(value)}")
    try:
        if set(map(type, value)) <= {float, int} and all(map(math.isfinite, value)) and min(value, default=0) >= 0:
            return  # the common case, at C speed
    except OverflowError:  # an integer beyond float range: found below
        pass
    for j, t in enumerate(value):
        if not (is_number(t) and t >= 0):
            raise UsageError(f"{p}: {label}: 'samples_ms'[{j}] must be a finite non-negative number; got {show(t)}")


def _check_environment(p: str, env: Any) -> dict[str, Any]:
    if not isinstance(env, dict):
        raise UsageError(f"{p}: 'environment' must be an object; got {show(env)}")
    for key, check in _ENV_CHECKS.items():
        if key in env and not check[0](env[key]):
            raise UsageError(f"{p}: environment {show(key)} must be {check[1]}; got {show(env[key])}")
    command = env.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(a, str) for a in command)):
        raise UsageError(f"{p}: environment 'command' must be a list of strings; got {show(command)}")
    options = env.get("options")
    if options is not None:
        if not isinstance(options, dict):
            raise UsageError(f"{p}: environment 'options' must be an object; got {show(options)}")
        for name, v in options.items():
            if not (isinstance(v, bool) or (isinstance(v, list) and all(isinstance(a, str) for a in v))):
                raise UsageError(
                    f"{p}: environment 'options' {show(name)} must be true, false or a list of strings; got {show(v)}"
                )
    sweep = env.get("sweep")
    if sweep is not None:
        if not isinstance(sweep, dict):
            raise UsageError(f"{p}: environment 'sweep' must be an object; got {show(sweep)}")
        for key in ("jobs", "all_jobs"):
            jobs = sweep.get(key, [])
            if not (isinstance(jobs, list) and all(is_name(j) for j in jobs)):
                raise UsageError(f"{p}: environment 'sweep' {show(key)} must be a list of job ids; got {show(jobs)}")
        if not _name_or_none(sweep.get("shard")):
            raise UsageError(f"{p}: environment 'sweep' 'shard' must be a string or null; got {show(sweep['shard'])}")
    for key in ("merged_from", "timed_concurrently"):
        texts = env.get(key)
        if texts is not None and not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
            raise UsageError(f"{p}: environment {show(key)} must be a list of strings; got {show(texts)}")
    problem = plain_error(env, "environment")
    if problem:
        raise UsageError(f"{p}: {problem}")
    return env


def check_results_doc(doc: Any, path: str | Path) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """Rows, environment and the document itself, checked; ``path`` names the file in messages.

    For documents put together from other sources too (the rows of a
    ``results.jsonl``). The environment is ``{}`` where the document has none.

    Raises:
        UsageError: the first problem found, naming the row and the column.
    """
    rows, env = _check_doc(doc, show_path(path))
    return rows, env, doc


def _check_doc(doc: Any, p: str) -> tuple[list[Row], dict[str, Any]]:
    if not isinstance(doc, dict) or "rows" not in doc:
        raise UsageError(f"{p} is not a vbench results file (no 'rows')")
    version = doc.get("schema_version")
    if not _is_int(version):
        raise UsageError(f"{p}: 'schema_version' must be the integer {SCHEMA_VERSION}; got {show(version)}")
    if version != SCHEMA_VERSION:
        raise UsageError(f"{p} has results schema version {show(version)}; this vbench reads version {SCHEMA_VERSION}")
    rows: list[Row] = doc["rows"]  # each checked below, column by column
    if not isinstance(rows, list):
        raise UsageError(f"{p}: 'rows' must be a list of objects; got {show(rows)}")
    for i, row in enumerate(rows, start=1):
        _check_row(p, i, row)
    env = _check_environment(p, doc.get("environment", {}))
    for key, value in doc.items():
        if key not in ("rows", "environment", "schema_version"):
            problem = plain_error(value, show(key))
            if problem:
                raise UsageError(f"{p}: {problem}")
    return rows, env


def load_results_doc(p: Path, shown: str | Path) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """Rows, environment and the whole document of a ``results.json``, checked (it may hold no rows).

    Raises:
        UsageError: missing, unreadable or not a regular file, too large, not
            JSON, of another schema version, or a value of the wrong type.
    """
    if not p.exists():
        raise UsageError(f"no results at {show_path(shown)}")
    name = show_path(p)
    doc = parse_json(read_text(p, "results file", RESULTS_CAP), f"{name} is not a vbench results file")
    rows, env = _check_doc(doc, name)
    if "environment" not in doc:
        doc["environment"] = env
    return rows, env, doc
