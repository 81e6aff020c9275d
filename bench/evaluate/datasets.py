"""Evaluation datasets: three layouts on disk, class lists, labels mapped to the model's class indices.

Layouts (:func:`load_dataset`):

- **folder**: ``DIR/<class>/<video>``, videos ending in ``.mp4``, ``.avi``,
  ``.mkv`` or ``.webm`` (any case); hidden entries are ignored; order: class
  folder, then file name.
- **Kinetics CSV**: a header with ``label``, ``youtube_id``, ``time_start``,
  ``time_end`` (``split`` and other columns are ignored), as the Kinetics-400/600/700
  annotation files have. A row's video is ``<youtube_id>_<start:06d>_<end:06d>``
  with one of the extensions above, the name the common downloaders
  (ActivityNet's ``download.py``, Showmax's kinetics-downloader) give it, looked
  for directly in the video root or in ``<root>/<label>/`` (label with spaces or
  with underscores). The video root is ``--video-root``, else the folder named
  like the CSV beside it (``val.csv`` -> ``val/``), else the CSV's own folder.
- **plain CSV**: rows ``path,label`` (an optional ``path,label`` header); a
  relative path is taken from ``--video-root``, else from the CSV's folder.

A row whose file is not there is kept as a *missing* video (counted and listed
with the skipped ones, never dropped silently); a dataset with no video at
all is a usage error.

Class lists (:func:`resolve_classes`): ``--classes FILE`` (one name per
line), else the Kinetics-400 list shipped with vbench for a 400-class model,
else the sorted class folder names of a folder dataset. Labels match a class
name exactly, or after folding case, ``_`` to a space and surrounding quotes
(``passing_American_football_(in_game)`` is ``passing American football (in game)``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.io import show_path
from bench.results.validate import show

__all__ = [
    "VIDEO_EXTENSIONS",
    "Dataset",
    "VideoItem",
    "class_indices",
    "kinetics400_classes",
    "load_class_file",
    "load_dataset",
    "resolve_classes",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm")
CSV_CAP = 256 * 2**20
"""Largest annotation file read (Kinetics-700's train CSV is about 30 MB)."""
CLASS_FILE_CAP = 16 * 2**20


@dataclass(frozen=True)
class VideoItem:
    """One video of the dataset: ``key`` names it in the predictions (unique), ``path`` is where it is."""

    key: str
    path: Path
    label: str


@dataclass
class Dataset:
    """The videos to evaluate, in order, and the rows whose file is missing."""

    layout: str
    source: Path
    root: Path
    items: list[VideoItem]
    missing: list[VideoItem] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    """Folder layout: every class folder, sorted (the class list when nothing else gives one)."""
    order: dict[str, int] = field(default_factory=dict, repr=False)
    """Each video's position in the source (present and missing ones alike)."""
    unusable: list[tuple[VideoItem, str, str]] = field(default_factory=list)
    """Folder layout: entries named like videos that are no video file (a dangling link, a link loop, a folder
    named ``x.mp4``, a FIFO), with the reason and detail of the skip each becomes: counted, never dropped."""

    @property
    def labels(self) -> list[str]:
        """Every label the dataset uses, in first-seen order."""
        unusable = [item for item, _, _ in self.unusable]
        return list(dict.fromkeys(item.label for item in (*self.items, *self.missing, *unusable)))

    @property
    def listed(self) -> int:
        """Every video of the dataset: present, missing and unusable."""
        return len(self.items) + len(self.missing) + len(self.unusable)

    def limit(self, n: int | None) -> Dataset:
        """The first ``n`` videos (present or missing, in dataset order)."""
        if n is None:
            return self
        first = set(sorted(self.order, key=self.order.__getitem__)[:n])
        return dataclasses.replace(
            self,
            items=[it for it in self.items if it.key in first],
            missing=[it for it in self.missing if it.key in first],
            unusable=[u for u in self.unusable if u[0].key in first],
        )


def _is_video(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS)


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: no folder, as a dangling link is none
        return False


def _unusable(entry: os.DirEntry[str]) -> tuple[str, str] | None:
    """Why an entry named like a video is no video file (the skip's reason and detail), or None for a file."""
    try:
        if entry.is_file():
            return None
        if entry.is_dir():
            return "unreadable", "a folder, not a video file"
        if entry.is_symlink():
            return "missing", f"a symbolic link to nothing ({show_path(os.readlink(entry.path))})"
        return "unreadable", "not a regular file (a FIFO, socket or device)"
    except OSError as e:
        return "unreadable", e.strerror or str(e)


def _text_name(name: str) -> str:
    """A file name as text that prints and writes anywhere: bytes that are not UTF-8 as ``\\xff`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _folder_dataset(root: Path) -> Dataset:
    try:
        folders = sorted(e.name for e in os.scandir(root) if _is_folder(e) and not e.name.startswith("."))
    except OSError as e:
        raise UsageError(f"cannot read --data {show_path(root)}: {e.strerror}") from None
    for name in folders:
        if _text_name(name) != name:
            raise UsageError(
                f"class folder {show_path(root / name)} has a name that is not UTF-8 (a class name must be text); "
                "rename it"
            )
    items: list[VideoItem] = []
    unusable: list[tuple[VideoItem, str, str]] = []
    order: dict[str, int] = {}
    for name in folders:
        try:
            entries = sorted((e for e in os.scandir(root / name) if _is_video(e.name)), key=lambda e: e.name)
        except OSError as e:
            raise UsageError(f"cannot read {show_path(root / name)}: {e.strerror}") from None
        for entry in entries:
            item = VideoItem(f"{name}/{_text_name(entry.name)}", root / name / entry.name, name)
            order[item.key] = len(order)
            why = _unusable(entry)
            if why is None:
                items.append(item)
            else:
                unusable.append((item, *why))
    if not items:
        raise UsageError(
            f"--data {show_path(root)} holds no videos: expected DIR/<class>/<video> with {', '.join(VIDEO_EXTENSIONS)}"
        )
    return Dataset("folder", root, root, items, folders=folders, order=order, unusable=unusable)


def _read_csv(path: Path) -> list[list[str]]:
    from bench.results.io import read_text

    text = read_text(path, "dataset CSV", CSV_CAP)
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise UsageError(f"dataset CSV {show_path(path)} is not valid CSV: {e}") from None
    if not rows:
        raise UsageError(f"dataset CSV {show_path(path)} is empty")
    return rows


def _index_videos(root: Path) -> dict[str, Path]:
    """Video files directly under ``root`` and one folder down, by file name without extension (first found wins)."""
    found: dict[str, Path] = {}

    def scan(folder: Path) -> list[os.DirEntry[str]]:
        try:
            return sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return []

    for entry in scan(root):
        if entry.is_file() and _is_video(entry.name):
            found.setdefault(f"./{Path(entry.name).stem}", Path(entry.path))
        elif entry.is_dir() and not entry.name.startswith("."):
            for sub in scan(Path(entry.path)):
                if sub.is_file() and _is_video(sub.name):
                    found.setdefault(f"{entry.name}/{Path(sub.name).stem}", Path(sub.path))
    return found


def _int_cell(value: str, where: str, what: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{where}: {what} must be a number; got {show(value)}") from None
    if not number.is_integer() or number < 0:
        raise UsageError(f"{where}: {what} must be a whole number of seconds; got {show(value)}")
    return int(number)


def _kinetics_dataset(path: Path, rows: list[list[str]], video_root: Path | None) -> Dataset:
    header = [c.strip().lower() for c in rows[0]]
    col = {name: header.index(name) for name in ("label", "youtube_id", "time_start", "time_end")}
    if video_root is None:
        beside = path.with_suffix("")
        video_root = beside if beside.is_dir() else path.parent
    index = _index_videos(video_root)
    items: list[VideoItem] = []
    missing: list[VideoItem] = []
    order: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        where = f"dataset CSV {show_path(path)}, line {line}"
        if len(row) < len(header):
            raise UsageError(f"{where} has {len(row)} cells; the header has {len(header)}")
        label = row[col["label"]].strip()
        youtube_id = row[col["youtube_id"]].strip()
        if not label or not youtube_id:
            raise UsageError(f"{where}: empty label or youtube_id")
        start = _int_cell(row[col["time_start"]].strip(), where, "time_start")
        end = _int_cell(row[col["time_end"]].strip(), where, "time_end")
        stem = f"{youtube_id}_{start:06d}_{end:06d}"
        if stem in order:
            raise UsageError(f"{where}: video {show(stem)} is listed twice")
        order[stem] = len(order)
        found = next(
            (index[k] for k in (f"./{stem}", f"{label}/{stem}", f"{label.replace(' ', '_')}/{stem}") if k in index),
            None,
        )
        if found is None:
            missing.append(VideoItem(stem, video_root / f"{stem}.mp4", label))
        else:
            items.append(VideoItem(stem, found, label))
    return _checked(Dataset("kinetics-csv", path, video_root, items, missing, order=order))


def _plain_dataset(path: Path, rows: list[list[str]], video_root: Path | None) -> Dataset:
    root = video_root if video_root is not None else path.parent
    first = [c.strip().lower() for c in rows[0]]
    body = rows[1:] if first[:2] == ["path", "label"] else rows
    start = len(rows) - len(body) + 1
    items: list[VideoItem] = []
    missing: list[VideoItem] = []
    order: dict[str, int] = {}
    seen: dict[tuple[Any, ...], tuple[int, str]] = {}
    for line, row in enumerate(body, start=start):
        where = f"dataset CSV {show_path(path)}, line {line}"
        if len(row) != 2:
            raise UsageError(f"{where} has {len(row)} cells; expected path,label")
        name, label = row[0].strip(), row[1].strip()
        if not name or not label:
            raise UsageError(f"{where}: empty path or label")
        video = Path(name) if Path(name).is_absolute() else root / name
        same = _file_identity(video)
        if name in order or same in seen:
            line_before, as_written = seen.get(same, (line, name))
            also = f" (as {show_path(as_written)} on line {line_before})" if as_written != name else ""
            raise UsageError(f"{where}: video {show_path(name)} is listed twice{also}")
        seen[same] = (line, name)
        order[name] = len(order)
        (items if video.is_file() else missing).append(VideoItem(name, video, label))
    return _checked(Dataset("csv", path, root, items, missing, order=order))


def _file_identity(path: Path) -> tuple[Any, ...]:
    """What makes two paths the same video: the file's device and inode (``a.mp4``, ``./a.mp4``, its absolute path,
    a link to it), or for a file that is not there, its absolute path with ``.`` and ``..`` folded."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return ("path", os.path.normpath(os.path.abspath(path)))
    return ("file", st.st_dev, st.st_ino)


def _checked(dataset: Dataset) -> Dataset:
    if not dataset.items:
        listed = len(dataset.missing)
        if not listed:
            raise UsageError(f"dataset CSV {show_path(dataset.source)} lists no videos")
        raise UsageError(
            f"dataset CSV {show_path(dataset.source)} lists {listed} videos but none of them is under "
            f"{show_path(dataset.root)}; give their folder with --video-root"
        )
    return dataset


def load_dataset(data: str | Path, video_root: str | Path | None = None) -> Dataset:
    """The videos of ``data``: a class-per-folder directory, a Kinetics annotation CSV or a ``path,label`` CSV.

    Raises:
        UsageError: a missing path, an unreadable or malformed CSV, a dataset without any video.
    """
    path = Path(data)
    root = Path(video_root) if video_root is not None else None
    if root is not None and not root.is_dir():
        raise UsageError(f"--video-root {show_path(root)} is not a folder")
    if not path.exists():
        raise UsageError(f"--data {show_path(path)} does not exist")
    if path.is_dir():
        if root is not None:
            raise UsageError("--video-root goes with a CSV --data; a folder --data holds its videos")
        return _folder_dataset(path)
    rows = _read_csv(path)
    header = {c.strip().lower() for c in rows[0]}
    if {"label", "youtube_id", "time_start", "time_end"} <= header:
        return _kinetics_dataset(path, rows, root)
    if "youtube_id" in header:
        raise UsageError(
            f"dataset CSV {show_path(path)} looks like a Kinetics file but lacks "
            f"{', '.join(sorted({'label', 'time_start', 'time_end'} - header))}"
        )
    return _plain_dataset(path, rows, root)


# ---------------------------------------------------------------- class lists


def _names(text: str, where: str) -> list[str]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names = []
    for i, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise UsageError(f"{where}, line {i} is empty (one class name per line; the line number is the index)")
        names.append(name)
    if not names:
        raise UsageError(f"{where} holds no class names")
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise UsageError(f"{where}: class {show(name)} is on lines {seen[name]} and {i}")
        seen[name] = i
    return names


def load_class_file(path: str | Path) -> list[str]:
    """Class names, one a line, in the model's index order.

    Raises:
        UsageError: a missing or unreadable file, an empty line inside, a name given twice, no names.
    """
    from bench.results.io import read_text

    return _names(read_text(path, "--classes file", CLASS_FILE_CAP), f"--classes file {show_path(path)}")


def kinetics400_classes() -> list[str]:
    """The 400 Kinetics classes in the alphabetical order torchvision's and the papers' models index them."""
    text = resources.files("bench").joinpath("data/kinetics400_classes.txt").read_text(encoding="utf-8")
    return _names(text, "bench/data/kinetics400_classes.txt")


def _fold(name: str) -> str:
    return " ".join(name.strip().strip("\"'").replace("_", " ").casefold().split())


def class_indices(labels: Iterable[str], classes: Sequence[str], source: str) -> dict[str, int]:
    """Each label's index in ``classes`` (exact name, else the folded one).

    Raises:
        UsageError: a label that is in no class (the first few named), or one that folds onto two classes.
    """
    exact = {name: i for i, name in enumerate(classes)}
    folded: dict[str, int] = {}
    clashes: set[str] = set()
    for i, name in enumerate(classes):
        key = _fold(name)
        if key in folded:
            clashes.add(key)
        folded.setdefault(key, i)
    out: dict[str, int] = {}
    unknown: list[str] = []
    for label in labels:
        if label in exact:
            out[label] = exact[label]
        elif _fold(label) in clashes:
            raise UsageError(f"label {show(label)} matches more than one class of {source}; name the class exactly")
        elif _fold(label) in folded:
            out[label] = folded[_fold(label)]
        else:
            unknown.append(label)
    if unknown:
        shown = ", ".join(show(u) for u in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise UsageError(
            f"{len(unknown)} labels are not in {source}: {shown}; pass the model's class list with --classes"
        )
    return out


def resolve_classes(classes_file: str | Path | None, dataset: Dataset, num_classes: int) -> tuple[list[str], str]:
    """The model's class names and where they came from (``--classes FILE``, ``kinetics400``, ``folders``).

    Raises:
        UsageError: no list fits (a model that is not 400-class, a CSV dataset, no --classes), or a list whose
            length is not the model's class count.
    """
    if classes_file is not None:
        names, source = load_class_file(classes_file), f"--classes file {show_path(classes_file)}"
    elif num_classes == 400:
        names, source = kinetics400_classes(), "kinetics400"
    elif dataset.layout == "folder":
        names, source = dataset.folders, "folders"
    else:
        raise UsageError(f"the model has {num_classes} classes: name them with --classes FILE (one a line)")
    if len(names) != num_classes:
        what = "the dataset has" if source == "folders" else f"{source} names"
        raise UsageError(
            f"the model has {num_classes} classes but {what} {len(names)}; pass the model's class list with --classes"
        )
    return names, source
