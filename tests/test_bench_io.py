"""The file primitives (:mod:`bench.results.io`): atomic writes, capped reads, claimed folders.

Their uses are tested with the formats (``test_trust_files``: caps, FIFOs, devices; ``test_bench_compare``:
``/dev/full`` and links; ``test_trust_runs``: a second ``vbench profile`` on a held folder); these pin the
primitives themselves, in this process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.results import io


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_atomic_write_replaces_the_file_whole_with_the_umask_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.txt"
    io.atomic_write_text(path, "one\ntwo\n")
    assert path.read_bytes() == b"one\ntwo\n"  # the folder made, newlines kept as given
    io.atomic_write_bytes(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    assert os.listdir(path.parent) == ["a.txt"]


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.txt"
    path.write_text("before")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(io.os, "fsync", full)  # the temporary file is written, then the disk is full
        with pytest.raises(OSError, match="No space left"):
            io.atomic_write_text(path, "after")
    with pytest.raises(UnicodeEncodeError):
        io.atomic_write_text(path, "half \ud800 written")  # a lone surrogate cannot be encoded
    with pytest.raises(OSError, match="not a regular file"):
        io.atomic_write_text(tmp_path, "a folder is not replaced")
    assert path.read_text() == "before"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_capped_read_refuses_a_fifo_without_blocking_and_an_oversized_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: opening it to read would block for ever
    with pytest.raises(UsageError, match="is a FIFO, not a file"):
        io.read_text(fifo, "config", cap=100)
    big = tmp_path / "big"
    big.write_bytes(b"\xef\xbb\xbf" + b"x" * 10)  # a byte-order mark is not text
    assert io.read_text(big, "config", cap=13) == "x" * 10
    with pytest.raises(UsageError, match=r"config '.*big' is too large \(13 bytes; at most 12 are read\)"):
        io.read_text(big, "config", cap=12)
    with pytest.raises(UsageError, match="cannot read config"):
        io.read_text(tmp_path / "missing", "config", cap=12)


def test_a_claimed_folder_is_refused_while_another_holds_its_lock(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with (out / io.LOCK).open("a+") as other:  # another open file description: as another process would hold it
        other.write("12345")
        other.flush()
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UsageError, match=r"another vbench run \(pid 12345\) is writing into"):
            io.claim_dir(out)
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert io.claim_dir(out) == out
    assert (out / io.LOCK).read_text() == str(os.getpid())
    io.claim_dir(out)  # this process holds it already: claimed again
    io.release_dir(out)
    with (out / io.LOCK).open("a+") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go of: another may take it


def test_a_path_in_a_message_stays_on_one_line() -> None:
    assert io.show_path("a b/c") == "'a b/c'"
    assert io.show_path("a\nb") == "'a\\nb'"
