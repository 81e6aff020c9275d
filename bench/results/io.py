"""The file primitives every file format of vbench is written and read with (torch-free, the lowest layer).

- :func:`atomic_write_text` / :func:`atomic_write_bytes`: a file is replaced whole (a temporary file beside it,
  synced, then renamed) or not at all, with the mode a plain ``open`` gives under the umask;
- :func:`read_text`: a regular file of at most a size cap, checked before it is opened and opened
  non-blocking, so that a FIFO cannot hang a command nor a device be read for ever;
- :func:`claim_dir`: "this folder is mine": created, proven writable and locked (``flock`` on
  :data:`LOCK`, held until the process ends or :func:`release_dir`), so that two runs never write one folder;
  :func:`probe_writable` checks the same without creating anything.

Problems a user can fix are one line (:class:`~bench.errors.UsageError`); paths in messages are shown with
:func:`show_path` (quoted, escaped where they hold control characters).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO

from bench.errors import UsageError

__all__ = [
    "LOCK",
    "RESULTS_CAP",
    "SMALL_CAP",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable_dir",
    "claim_dir",
    "has_control",
    "is_temp_name",
    "is_utf8",
    "lock_dir",
    "probe_writable",
    "read_text",
    "release_dir",
    "show_path",
]

LOCK = ".vbench.lock"
"""The lock file of a claimed folder (it holds the owner's pid)."""

RESULTS_CAP = 256 * 2**20
"""Largest ``results.json`` read (bytes); a full GPU grid with raw samples is a few MiB."""
SMALL_CAP = 16 * 2**20
"""Largest accuracy or settings file read (bytes)."""

_held: dict[Path, IO[str]] = {}  # open lock files: the locks last as long as this process

# ---------------------------------------------------------------- paths in messages

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character that would break a message's line (a control or line separator)."""
    return _CONTROL.search(text) is not None


def is_utf8(v: str) -> bool:
    """False for a lone surrogate (from a ``"\\ud800"`` escape): it cannot be printed or written."""
    return v.isascii() or _SURROGATE.search(v) is None


def show_path(path: str | Path) -> str:
    """A path as typed, quoted; escaped where it holds control characters (it must not break the line)."""
    text = os.fspath(path)
    return f"'{text}'" if not has_control(text) and is_utf8(text) else repr(text)


# ---------------------------------------------------------------- writing


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()
"""What ``open`` would give a new file under this process's umask (``mkstemp`` makes them 0600)."""


_TEMP_PREFIX, _TEMP_SUFFIX = ".", ".tmp"
"""How the temporary file of :func:`atomic_write_bytes` is named: ``.<name>.<random>.tmp``."""


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of the temporary files :func:`atomic_write_bytes` writes through (one a kill
    left behind, or one being written): never a file of a format."""
    return name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written).

    A symbolic link is written through (its target is replaced, the link kept); a
    path that is something other than a regular file (a device such as
    ``/dev/full``, a FIFO, a socket) is refused with :class:`OSError` (EINVAL),
    never replaced: as root, the rename would destroy the device node. On any
    failure the temporary file is removed and ``path`` is left as it was.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket); name a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_TEMP_PREFIX}{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8, newlines as given (``"\\n"`` stays ``"\\n"``)."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------- reading


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _read_capped(path: str | Path, where: str, cap: int) -> bytes:
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{where} is {_kind(st.st_mode)}, not a file")
    if st.st_size > cap:
        raise UsageError(f"{where} is too large ({st.st_size} bytes; at most {cap} are read)")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped after the first look
            raise UsageError(f"{where} is {_kind(st.st_mode)}, not a file")
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(path: str | Path, what: str, cap: int, errors: str = "strict") -> str:
    """The text of a regular file of at most ``cap`` bytes, UTF-8 with an optional byte-order mark.

    The file is checked with ``stat`` before it is opened and opened
    non-blocking, so that a FIFO (or one swapped in between) cannot hang the
    read and a device cannot be read forever. ``what`` names the file in
    messages ("results file", "config"); ``errors="replace"`` suits a
    ``results.jsonl`` whose last line a kill may have cut inside a character.

    Raises:
        UsageError: missing, unreadable, not a regular file, too large, not UTF-8.
    """
    where = f"{what} {show_path(path)}"
    try:
        data = _read_capped(path, where, cap)
    except OSError as e:
        raise UsageError(f"cannot read {where}: {e.strerror or type(e).__name__}") from None
    if len(data) > cap:
        raise UsageError(f"{where} is too large (more than {cap} bytes)")
    try:
        return data.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as e:
        raise UsageError(f"{where} is not UTF-8 text (byte {e.start})") from None


# ---------------------------------------------------------------- folders


def check_writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and prove that a file can be written in it; one-line errors otherwise."""
    if str(path) == "":
        raise UsageError(f"{what} is empty; name a folder")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} '{path}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        why = "a part of the path is a file" if e.errno in (errno.ENOTDIR, errno.EEXIST) else e.strerror
        raise UsageError(f"{what} '{path}' cannot be written: {why}") from None
    return path


def probe_writable(path: Path, what: str) -> Path:
    """Would ``path`` be a writable folder? Checked without creating anything (one-line errors)."""
    if str(path) == "":
        raise UsageError(f"{what} is empty; name a folder")
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{what} '{path}' is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{what} '{path}' cannot be written: permission denied")
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} '{path}' cannot be written: a part of the path is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} '{path}' cannot be written: '{parent}' is not writable")
    return path


def lock_dir(path: Path) -> None:
    """Lock the existing folder ``path`` for this process (again: nothing to do); without ``fcntl``, no lock.

    Raises:
        UsageError: another process holds it (its pid in the message).
    """
    try:
        import fcntl
    except ImportError:
        return
    if path.resolve() in _held:
        return
    f = (path / LOCK).open("a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise UsageError(
            f"another vbench run (pid {pid[:20]}) is writing into '{path}'; wait for it or choose another --out"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _held[path.resolve()] = f


def claim_dir(path: Path, what: str = "--out") -> Path:
    """Make ``path`` this process's folder: created, proven writable, and locked (:func:`lock_dir`).

    Raises:
        UsageError: an unwritable path, or a folder another process holds.
    """
    check_writable_dir(path, what)
    lock_dir(path)
    return path


def release_dir(path: Path) -> None:
    """Let go of the lock on ``path`` (if this process holds it); its lock file stays."""
    held = _held.pop(path.resolve(), None)
    if held is not None:
        held.close()
