"""``vbench evaluate``: top-1/top-5 of a model on the user's videos, by a named protocol, nothing lost.

The loop (:func:`evaluate`): DataLoader workers decode and resize each video
(:func:`bench.video.read_video`); this process cuts the views, runs the model
on batches of views under ``torch.inference_mode()``, averages the softmax of
a video's views, and appends the video's prediction line to
``predictions.jsonl`` (flushed to disk) the moment its last view is done.
The model runs in this process; the workers isolate decoding, and a video that
cannot be read becomes a *skipped* line with its reason, never a crash.

An evaluation folder holds:

- ``predictions.jsonl``: one line per video, ``"status": "ok"`` (label, target,
  prediction, top-5 with probabilities, views) or ``"skipped"`` (reason, detail);
  the record of truth, read back by ``--only-missing``;
- ``evaluation.json``: the summary (state ``running``, ``interrupted`` or
  ``complete``; arch, weights, input, protocol, dataset, counts, accuracy,
  timings, environment), written atomically at the start and at the end;
- ``per_class.csv`` and ``confusion.csv`` (true class per row, predicted class
  per column), written at the end.

Accuracy is computed over every ``ok`` line of the file, the ones an earlier
run wrote included; numbers (:func:`compute_metrics`) are computed apart from
their formatting (the CLI's).

Protocols (:func:`protocols`) name the views the papers, model zoos and
torchvision evaluate with; each family's file declares its own and says where
it comes from.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import os
import platform
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import archs
from bench.datasets import Dataset, VideoItem, class_indices
from bench.errors import OutputError, UsageError, first_line
from bench.video import SKIP_REASONS, DecodedVideo, VideoError, ViewSpec, make_views, read_video

if TYPE_CHECKING:
    import torch

    from archs import Protocol

__all__ = [
    "EVAL_FILES",
    "RETRIED_REASONS",
    "DecoderDied",
    "EvalOptions",
    "EvalResult",
    "Metrics",
    "Timing",
    "check_eval_out",
    "compute_metrics",
    "evaluate",
    "file_sha256",
    "protocols",
    "remove_if_empty",
    "resolve_protocol",
]

SCHEMA_VERSION = 1
EVAL_FILES = ("evaluation.json", "predictions.jsonl", "per_class.csv", "confusion.csv")
"""What an evaluation folder holds; a folder with anything else in it is not written into."""
_LOCK = ".vbench.lock"
_TOP = 5


# ---------------------------------------------------------------- protocols


def protocols() -> dict[str, Protocol]:
    """Every preset, by name: the ones each family's file declares (:func:`archs.list_protocols`)."""
    return archs.list_protocols()


RETRIED_REASONS = ("missing", "unreadable", "corrupt")
"""Skips whose cause can change (the file is copied in, finishes downloading, is replaced): ``--only-missing``
tries those videos again. A video too short, without a video stream or that made the model output NaN is not."""

MAX_CLIPS = 300
"""Most clips per video a protocol may take (the papers use 1 to 115; 300 is ten a second of a 30 s clip)."""


def resolve_protocol(name: str, clips: int | None = None, crops: int | None = None) -> Protocol:
    """The preset ``name`` with ``--clips``/``--crops`` overriding its counts (named ``custom`` then).

    Raises:
        UsageError: an unknown name, or clips/crops below 1.
    """
    presets = protocols()
    if name not in presets:
        raise UsageError(f"unknown protocol '{name}'; choose from {', '.join(presets)}")
    for value, what, most in ((clips, "--clips", MAX_CLIPS), (crops, "--crops", 3)):
        if value is not None and not 1 <= value <= most:
            raise UsageError(f"{what} must be from 1 to {most}; got {value}")
    base = presets[name]
    if clips is None and crops is None:
        return base
    return dataclasses.replace(
        base,
        name="custom",
        clips=clips if clips is not None else base.clips,
        crops=crops if crops is not None else base.crops,
        source=f"{name} with --clips/--crops",
    )


# ---------------------------------------------------------------- metrics (numbers only)


@dataclass(frozen=True)
class Metrics:
    """Accuracy over the ``ok`` prediction lines; percentages, ``None`` where there is nothing to count.

    ``confusion[t][p]`` counts videos of true class ``t`` predicted as ``p``; ``per_class`` has one entry per
    class (``videos``, ``top1``, ``top5``); ``k`` is the top-k of ``top5`` (5, or the class count if smaller).
    """

    videos: int
    skipped: int
    skipped_by_reason: dict[str, int]
    top1: float | None
    top5: float | None
    mean_class_top1: float | None
    k: int
    per_class: list[dict[str, Any]]
    confusion: list[list[int]]


def _pct(hits: int, n: int) -> float | None:
    return 100.0 * hits / n if n else None


def compute_metrics(records: Sequence[Mapping[str, Any]], num_classes: int) -> Metrics:
    """Top-1, top-5, per-class accuracy and the confusion matrix of prediction lines."""
    k = min(_TOP, num_classes)
    confusion = [[0] * num_classes for _ in range(num_classes)]
    n = [0] * num_classes
    hit1 = [0] * num_classes
    hit5 = [0] * num_classes
    reasons: Counter[str] = Counter()
    for r in records:
        if r["status"] != "ok":
            reasons[r["reason"]] += 1
            continue
        t, p = r["target"], r["pred"]
        confusion[t][p] += 1
        n[t] += 1
        hit1[t] += p == t
        hit5[t] += t in r["top5"][:k]
    videos = sum(n)
    per_class = [
        {"index": c, "videos": n[c], "top1": _pct(hit1[c], n[c]), "top5": _pct(hit5[c], n[c])}
        for c in range(num_classes)
    ]
    seen = [100.0 * hit1[c] / n[c] for c in range(num_classes) if n[c]]
    return Metrics(
        videos=videos,
        skipped=sum(reasons.values()),
        skipped_by_reason={reason: reasons[reason] for reason in SKIP_REASONS if reasons[reason]},
        top1=_pct(sum(hit1), videos),
        top5=_pct(sum(hit5), videos),
        mean_class_top1=sum(seen) / len(seen) if seen else None,
        k=k,
        per_class=per_class,
        confusion=confusion,
    )


@dataclass
class Timing:
    """Where this run's time went, seconds. Decoding and resizing happen in the workers (in parallel when
    ``workers`` > 0); cutting views, normalising and the model happen here; ``wait_s`` is how long this
    process waited for the loader: the loader is the bottleneck when it exceeds ``model_s``."""

    workers: int = 0
    videos: int = 0
    clips: int = 0
    decode_s: float = 0.0
    resize_s: float = 0.0
    views_s: float = 0.0
    model_s: float = 0.0
    wait_s: float = 0.0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        def rate(seconds: float) -> float | None:
            return self.clips / seconds if seconds > 0 and self.clips else None

        preprocess_s = self.resize_s + self.views_s
        return {
            "videos": self.videos,
            "clips": self.clips,
            "workers": self.workers,
            "decode_s": self.decode_s,
            "preprocess_s": preprocess_s,
            "model_s": self.model_s,
            "loader_wait_s": self.wait_s,
            "wall_s": self.wall_s,
            "decode_clips_per_s": rate(self.decode_s),
            "preprocess_clips_per_s": rate(preprocess_s),
            "model_clips_per_s": rate(self.model_s),
            "clips_per_s": rate(self.wall_s),
            "bottleneck": None if not self.clips else "loader" if self.wait_s > self.model_s else "model",
            "note": "decode and resize run in the loader workers (their seconds add up over workers); a clip is "
            "one view the model sees; this run's work only",
        }


# ---------------------------------------------------------------- the output folder


def check_eval_out(path: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Before any work: could ``path`` take this evaluation? Creates nothing.

    A new or empty folder is fine; one holding an evaluation needs ``--only-missing`` (finish it) or
    ``--overwrite`` (replace it); one holding anything else (a profile run, your files) is refused.

    Raises:
        UsageError: an unwritable path, a foreign folder, an evaluation without either flag.
    """
    from bench.run.rundir import probe_writable

    probe_writable(path, "--out")
    if not path.is_dir():
        return path
    names = {n for n in os.listdir(path) if n != _LOCK and not (n.startswith(".") and n.endswith(".tmp"))}
    foreign = sorted(names - set(EVAL_FILES))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UsageError(
            f"--out '{path}' holds files vbench evaluate did not write ({shown}); choose a new or empty folder"
        )
    if names and not (resume or overwrite):
        raise UsageError(
            f"--out '{path}' already holds an evaluation; pass --only-missing to finish it, --overwrite to "
            "replace it, or choose another folder"
        )
    return path


def _claim(path: Path, resume: bool, overwrite: bool) -> Path:
    """Create and lock ``path`` (the lock keeps a second run out), then check it again under the lock."""
    from bench.run import rundir

    rundir.check_writable_dir(path, "--out")  # creates it; not rundir.claim, which refuses an evaluation folder
    with contextlib.suppress(ImportError):  # no fcntl: no lock
        rundir._lock(path)
    check_eval_out(path, resume=resume, overwrite=overwrite)
    if overwrite and not resume:
        for name in EVAL_FILES:
            (path / name).unlink(missing_ok=True)
    return path


def remove_if_empty(path: Path) -> bool:
    """Remove ``path`` if it holds nothing but this process's lock (a run that failed before writing anything):
    no empty run folder is left behind. Returns whether it was removed."""
    from bench.run import rundir

    try:
        if {n for n in os.listdir(path) if not (n.startswith(".") and n.endswith(".tmp"))} - {_LOCK}:
            return False
        held = rundir._held.pop(path.resolve(), None)
        if held is not None:
            held.close()
        for name in os.listdir(path):
            (path / name).unlink()
        path.rmdir()
    except OSError:
        return False
    return True


def _check_record(r: Any, num_classes: int) -> bool:
    if not isinstance(r, dict) or not isinstance(r.get("video"), str):
        return False
    if r.get("status") == "skipped":
        return r.get("reason") in SKIP_REASONS
    if r.get("status") != "ok":
        return False
    target, pred, top5 = r.get("target"), r.get("pred"), r.get("top5")

    def index(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < num_classes

    return index(target) and index(pred) and isinstance(top5, list) and all(index(v) for v in top5)


def _read_predictions(path: Path, num_classes: int) -> tuple[list[dict[str, Any]], bool]:
    """The valid lines of a ``predictions.jsonl`` (a line cut short by a kill, or not ours, is dropped), and
    whether the file needs rewriting (it held such a line)."""
    from bench.results.validate import RESULTS_CAP, parse_json, read_text

    if not path.is_file():
        return [], False
    records: dict[str, dict[str, Any]] = {}
    dropped = False
    text = read_text(path, "predictions file", RESULTS_CAP, errors="replace")
    for line in text.splitlines():
        try:
            r = parse_json(line, f"'{path}'")
        except UsageError:
            dropped = True
            continue
        if _check_record(r, num_classes):
            records.setdefault(r["video"], r)
        else:
            dropped = True
    return list(records.values()), dropped or (bool(text) and not text.endswith("\n"))


def _load_previous(out: Path, fingerprint: dict[str, Any], num_classes: int) -> list[dict[str, Any]]:
    """The prediction lines an earlier run of the same evaluation left in ``out`` (for ``--only-missing``).

    Raises:
        UsageError: the folder's evaluation was made with another arch, weights, protocol, input, dataset or
            class list.
    """
    from bench.results.store import atomic_write_text
    from bench.results.validate import SMALL_CAP, parse_json, read_text

    summary = out / "evaluation.json"
    if summary.is_file():
        doc = parse_json(read_text(summary, "evaluation file", SMALL_CAP), f"'{summary}' is not valid JSON")
        before = doc.get("fingerprint") if isinstance(doc, dict) else None
        if not isinstance(before, dict):
            raise UsageError(f"'{summary}' is not a vbench evaluation; choose another --out")
        changed = sorted(k for k in fingerprint.keys() | before.keys() if fingerprint.get(k) != before.get(k))
        if changed:
            raise UsageError(
                f"--only-missing: '{out}' holds an evaluation with other settings ({', '.join(changed)}); "
                "use the same options, --overwrite, or another --out"
            )
    records, rewrite = _read_predictions(out / "predictions.jsonl", num_classes)
    if rewrite:
        atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return records


def _sha256_text(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (the weights), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- the loop


@dataclass(frozen=True)
class EvalOptions:
    """How to run (none of it changes the numbers, except ``dtype``)."""

    batch: int = 8
    device: str = "cpu"
    dtype: str = "fp32"
    workers: int = 0


@dataclass
class EvalResult:
    out_dir: Path
    state: str
    metrics: Metrics
    timing: Timing
    kept: int
    """Prediction lines an earlier run left (``--only-missing``)."""
    paths: dict[str, Path] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict)
    retried: int = 0
    """Skipped videos of an earlier run tried again (``--only-missing``; :data:`RETRIED_REASONS`)."""
    dropped: int = 0
    """Lines of an earlier run for videos the dataset no longer lists, removed (``--only-missing``)."""


class _Videos:
    """A map-style dataset for torch's DataLoader: item ``i`` is ``(i, DecodedVideo)`` or ``(i, (reason, detail))``."""

    def __init__(self, items: Sequence[VideoItem], spec: ViewSpec) -> None:
        self.items = list(items)
        self.spec = spec
        self.threads = 0  # FFmpeg's choice in this process; workers set 1 (they run side by side)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, DecodedVideo | tuple[str, str]]:
        try:
            return i, read_video(self.items[i].path, self.spec, threads=self.threads)
        except VideoError as e:
            return i, (e.reason, e.detail)
        except Exception as e:  # a decoder bug must not end the worker: the video is skipped, with why
            return i, ("corrupt", first_line(e)[:200])


def _worker_init(_: int) -> None:
    """A decoding worker: one torch thread, one FFmpeg thread (the workers run side by side), and deaf to
    Ctrl-C and hang-ups: the main process hears them, writes what finished and shuts the workers down."""
    import signal

    import torch

    for s in (signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if s is not None:
            signal.signal(s, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        info.dataset.threads = 1  # type: ignore[attr-defined]


def _identity(x: Any) -> Any:
    return x


@dataclass
class _Pending:
    """A video whose views are being run: the mean of their softmax is its prediction."""

    item: VideoItem
    video: DecodedVideo
    target: int
    views: int
    prob_sum: torch.Tensor | None = None
    left: int = 0


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


class _Writer:
    """``predictions.jsonl`` appended line by line (flushed and synced), ``evaluation.json`` atomically."""

    def __init__(self, out: Path, base: dict[str, Any]) -> None:
        self.out = out
        self.base = base
        self.predictions = (out / "predictions.jsonl").open("a")

    def line(self, record: dict[str, Any]) -> None:
        try:
            self.predictions.write(json.dumps(record) + "\n")
            self.predictions.flush()
            os.fsync(self.predictions.fileno())
        except OSError as e:  # a full disk: one line; the lines written before stay
            raise OutputError(f"cannot write '{self.out / 'predictions.jsonl'}': {e.strerror or e}") from None

    def summary(self, state: str, metrics: Metrics, timing: Timing, classes: Sequence[str]) -> dict[str, Any]:
        from bench.results.store import atomic_write_text

        doc = {**self.base, "state": state, **_summary_fields(metrics, timing, self.base)}
        try:
            atomic_write_text(self.out / "evaluation.json", json.dumps(doc, indent=1, default=str) + "\n")
            if state != "running":
                atomic_write_text(self.out / "per_class.csv", per_class_csv(metrics, classes))
                atomic_write_text(self.out / "confusion.csv", confusion_csv(metrics, classes))
        except OSError as e:  # a full disk: one line; predictions.jsonl keeps what finished
            raise OutputError(f"cannot write the summary in '{self.out}': {e.strerror or e}") from None
        return doc

    def close(self) -> None:
        self.predictions.close()


def _summary_fields(metrics: Metrics, timing: Timing, base: Mapping[str, Any]) -> dict[str, Any]:
    listed = base["dataset"]["videos"]
    done = metrics.videos + metrics.skipped
    accuracy = {
        "top1": metrics.top1,
        "top5": metrics.top5,
        "top5_k": metrics.k,
        "mean_class_top1": metrics.mean_class_top1,
    }
    record = None
    if metrics.top1 is not None:
        spec = base["input"]
        record = {
            "arch": base["arch"],
            "input": f"{spec['frames']}x{spec['size']}x{spec['size']}",
            "top1": metrics.top1,
            "top5": metrics.top5,
            "views": base["protocol"]["describe"],
            "dataset": base["dataset"]["name"],
            "source": f"measured: vbench evaluate, protocol {base['protocol']['name']}, {metrics.videos} videos",
        }
    return {
        "counts": {
            "listed": listed,
            "done": done,
            "evaluated": metrics.videos,
            "skipped": metrics.skipped,
            "skipped_by_reason": metrics.skipped_by_reason,
            "remaining": max(listed - done, 0),
        },
        "accuracy": accuracy,
        "accuracy_record": record,
        "timing": timing.summary(),
    }


def per_class_csv(metrics: Metrics, classes: Sequence[str]) -> str:
    """``index,class,videos,top1,top5`` (percent; empty for a class without videos)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "class", "videos", "top1", f"top{metrics.k}"])
    for pc in metrics.per_class:
        w.writerow([pc["index"], classes[pc["index"]], pc["videos"], _cell(pc["top1"]), _cell(pc["top5"])])
    return buf.getvalue()


def confusion_csv(metrics: Metrics, classes: Sequence[str]) -> str:
    """Counts: one row per true class, one column per predicted class, both in class-index order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, metrics.confusion):
        w.writerow([name, *row])
    return buf.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _environment(options: EvalOptions) -> dict[str, Any]:
    import av

    from bench.measure.environment import environment

    env = environment(options.device if options.device == "cuda" else None)
    env.update(
        host=socket.gethostname(),
        device=options.device,
        dtype=options.dtype,
        batch=options.batch,
        workers=options.workers,
        av_version=av.__version__,
        machine=platform.machine(),
    )
    return env


def fingerprint(meta: Mapping[str, Any], spec: ViewSpec, classes: Sequence[str], dtype: str) -> dict[str, Any]:
    """What must match for ``--only-missing`` to add to an earlier evaluation's predictions."""
    kwargs = {"arch_kwargs": dict(meta["arch_kwargs"])} if meta.get("arch_kwargs") else {}
    return {
        **kwargs,
        "arch": meta.get("arch"),
        "weights": (meta.get("weights") or {}).get("sha256") or (meta.get("weights") or {}).get("path"),
        "views": [spec.clips, spec.crops],
        "input": [spec.frames, spec.frame_stride, spec.crop, list(spec.resize) if isinstance(spec.resize, tuple)
                  else spec.resize, list(spec.mean), list(spec.std)],
        "dataset": (meta.get("dataset") or {}).get("path"),
        "classes": _sha256_text(classes),
        "dtype": dtype,
    }  # fmt: skip


def evaluate(
    model: Any,
    spec: ViewSpec,
    dataset: Dataset,
    classes: Sequence[str],
    out_dir: Path,
    *,
    options: EvalOptions = EvalOptions(),
    meta: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_start: Callable[[int, list[dict[str, Any]], int, int], None] | None = None,
    on_video: Callable[[dict[str, Any]], None] | None = None,
) -> EvalResult:
    """Evaluate ``model`` (logits ``(B, len(classes))`` from ``(B, 3, T, H, W)``) on ``dataset``; write ``out_dir``.

    Args:
        spec: frames, crops and pixels of the views (the weights' preprocessing and the protocol).
        meta: recorded as they are in ``evaluation.json``: ``arch``, ``weights`` (``path``, ``source``,
            ``sha256``, ...), ``protocol`` (``name``, ``source``), ``dataset`` extras, ``options``.
        resume: ``--only-missing``: keep the folder's prediction lines and evaluate only the other videos.
        overwrite: replace the evaluation the folder holds.
        on_start: called once the folder is claimed with the number of videos to do, the lines kept, how many
            skipped videos are retried (``--only-missing`` tries again those skipped for a reason that can change:
            :data:`RETRIED_REASONS`) and how many lines were removed because the dataset no longer lists their
            video.
        on_video: called with each prediction or skip line as it is written.

    A signal (:class:`bench.run.lifetime.Interrupted`) or any other exception writes ``evaluation.json`` with
    state ``interrupted`` (counts and accuracy of what finished) and is re-raised.

    Raises:
        UsageError: a label outside ``classes``, an unusable or foreign ``out_dir``, an earlier evaluation of
            other settings (with ``resume``), a model whose output does not have ``len(classes)`` logits.
    """
    import torch

    meta = dict(meta or {})
    num_classes = len(classes)
    label_index = class_indices(dataset.labels, classes, meta.get("classes_source", "the class list"))
    if options.batch < 1:
        raise UsageError(f"--batch must be >= 1; got {options.batch}")
    if options.workers < 0:
        raise UsageError(f"--workers must be >= 0; got {options.workers}")
    device = torch.device(options.device)
    out = _claim(Path(out_dir), resume, overwrite)
    protocol_meta = meta.get("protocol") or {}
    base: dict[str, Any] = {
        "schema": "vbench-evaluation",
        "schema_version": SCHEMA_VERSION,
        "arch": meta.get("arch", type(model).__name__),
        "arch_kwargs": dict(meta.get("arch_kwargs") or {}),
        "weights": meta.get("weights", {}),
        "input": {
            "frames": spec.frames,
            "size": spec.crop,
            "frame_stride": spec.frame_stride,
            "resize": spec.resize,
            "mean": spec.mean,
            "std": spec.std,
        },
        "protocol": {
            "name": protocol_meta.get("name", "custom"),
            "clips": spec.clips,
            "crops": spec.crops,
            "views_per_video": spec.views,
            "describe": archs.Protocol("", spec.clips, spec.crops).describe(),
            "source": protocol_meta.get("source", ""),
        },
        "dataset": {
            "path": str(Path(dataset.source).resolve()),
            "name": Path(dataset.source).name,
            "layout": dataset.layout,
            "video_root": str(dataset.root),
            "videos": dataset.listed,
            **(meta.get("dataset") or {}),
        },
        "classes": {"source": meta.get("classes_source", ""), "count": num_classes, "sha256": _sha256_text(classes)},
        "options": meta.get("options", {}),
        "environment": _environment(options),
    }
    base["fingerprint"] = fingerprint({**meta, "dataset": base["dataset"]}, spec, classes, options.dtype)
    records = _load_previous(out, base["fingerprint"], num_classes) if resume else []
    retried = [r["video"] for r in records if r["status"] == "skipped" and r["reason"] in RETRIED_REASONS]
    # A video the dataset no longer lists (its file and its line were removed) leaves the evaluation: its
    # prediction would count in top-1 over videos that are not there.
    gone = [r["video"] for r in records if r["video"] not in dataset.order]
    if retried or gone:  # their lines go: retried videos are tried again, and a new line is written for each
        from bench.results.store import atomic_write_text

        again = set(retried) | set(gone)
        records = [r for r in records if r["video"] not in again]
        try:
            atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        except OSError as e:
            raise OutputError(f"cannot write '{out / 'predictions.jsonl'}': {e.strerror or e}") from None
    kept = len(records)
    done = {r["video"] for r in records}
    if resume:
        base["resumed"] = {
            "kept": kept,
            "retried": len(retried),
            "retried_reasons": list(RETRIED_REASONS),
            "dropped_unlisted": len(gone),
        }
    writer = _Writer(out, base)
    timing = Timing(workers=options.workers)
    state = "interrupted"
    try:
        doc = writer.summary("running", compute_metrics(records, num_classes), timing, classes)

        def write(record: dict[str, Any]) -> None:
            writer.line(record)
            records.append(record)
            if on_video is not None:
                on_video(record)

        todo = [it for it in dataset.items if it.key not in done]
        missing = [(it, "missing", f"no file at {it.path}") for it in dataset.missing if it.key not in done]
        missing += [(it, reason, detail) for it, reason, detail in dataset.unusable if it.key not in done]
        missing.sort(key=lambda m: dataset.order.get(m[0].key, 0))
        if on_start is not None:
            on_start(len(todo) + len(missing), list(records), len(retried), len(gone))
        for item, reason, detail in missing:
            write(_skip_record(item, reason, detail))
        started = time.perf_counter()
        try:
            _run(model, spec, todo, label_index, device, options, timing, write, num_classes)
        finally:
            timing.wall_s = time.perf_counter() - started
        state = "complete"
    finally:
        metrics = compute_metrics(records, num_classes)
        try:
            doc = writer.summary(state, metrics, timing, classes)
        except OutputError:
            if state == "complete":
                raise
            # otherwise the error already on its way says more
        finally:
            with contextlib.suppress(OSError):
                writer.close()
    paths = {name.split(".")[0]: out / name for name in EVAL_FILES}
    return EvalResult(out, state, metrics, timing, kept, paths, doc, retried=len(retried), dropped=len(gone))


def _skip_record(item: VideoItem, reason: str, detail: str) -> dict[str, Any]:
    return {"video": item.key, "status": "skipped", "label": item.label, "reason": reason, "detail": detail}


def _run(
    model: Any,
    spec: ViewSpec,
    todo: Sequence[VideoItem],
    label_index: Mapping[str, int],
    device: torch.device,
    options: EvalOptions,
    timing: Timing,
    write: Callable[[dict[str, Any]], None],
    num_classes: int,
) -> None:
    import torch
    from torch.utils.data import DataLoader

    if not todo:
        return
    model.eval()
    loader: DataLoader[Any] = DataLoader(
        _Videos(todo, spec),  # type: ignore[arg-type]
        batch_size=None,
        shuffle=False,
        num_workers=options.workers,
        collate_fn=_identity,
        worker_init_fn=_worker_init if options.workers else None,
        prefetch_factor=2 if options.workers else None,
    )
    queue: list[tuple[_Pending, int]] = []  # views waiting for the model, in video order
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def finish(p: _Pending) -> None:
        assert p.prob_sum is not None
        probs = p.prob_sum / p.views
        if not bool(torch.isfinite(probs).all()):  # never a prediction made of NaN: a skip, counted
            write(_skip_record(p.item, "non-finite output", "the model's logits hold NaN or infinity"))
            return
        top = torch.topk(probs, min(_TOP, num_classes))
        pred = int(top.indices[0])
        write({
            "video": p.item.key,
            "status": "ok",
            "label": p.item.label,
            "target": p.target,
            "pred": pred,
            "correct": pred == p.target,
            "top5": [int(i) for i in top.indices],
            "top5_prob": [round(float(v), 6) for v in top.values],
            "views": p.views,
            "frames": p.video.n_frames,
            "frames_used": len({i for c in p.video.clips for i in c}),
        })  # fmt: skip

    def run_batch() -> None:
        size = len(queue[0][0].video.clips[queue[0][1] // spec.crops])
        n = 0
        while n < min(options.batch, len(queue)):
            p, v = queue[n]
            if len(p.video.clips[v // spec.crops]) != size:
                break  # whole-video views of different lengths do not share a batch
            n += 1
        batch = queue[:n]
        del queue[:n]
        t0 = time.perf_counter()
        parts, owners = [], []
        start = 0
        while start < n:
            end = start
            while end < n and batch[end][0] is batch[start][0]:
                end += 1
            p = batch[start][0]
            parts.append(make_views(p.video, spec, [v for _, v in batch[start:end]], device))
            owners += [p] * (end - start)
            start = end
        x = parts[0] if len(parts) == 1 else torch.cat(parts)
        sync()
        t1 = time.perf_counter()
        with torch.inference_mode(), _autocast(device, options.dtype):
            logits = model(x)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (n, num_classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise UsageError(f"the model returned {shape} for a batch of {n} clips; expected ({n}, {num_classes})")
        probs = logits.float().softmax(-1).cpu()
        t2 = time.perf_counter()
        timing.views_s += t1 - t0
        timing.model_s += t2 - t1
        timing.clips += n
        for i, p in enumerate(owners):
            p.prob_sum = probs[i].clone() if p.prob_sum is None else p.prob_sum + probs[i]
            p.left -= 1
            if p.left == 0:
                finish(p)

    iterator: Iterator[Any] = iter(loader)
    finished = False
    try:
        _loop(iterator, todo, spec, options, label_index, timing, write, run_batch, queue)
        finished = True
    except RuntimeError as e:
        died = _dead_worker(iterator, todo, e)
        if died is None:
            raise
        raise died from None
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        try:
            if shutdown is not None:
                shutdown()
        except RuntimeError as e:  # torch's SIGCHLD handler can report a worker's death while it is shut down
            died = _dead_worker(iterator, todo, e)
            if died is None:
                raise
            if not finished:  # every video has its line when it finished: the death cost nothing
                raise died from None
        del iterator


class DecoderDied(RuntimeError):
    """A decoding worker died of a signal (SIGKILL: most likely the kernel's out-of-memory killer).

    ``signum``: the signal; ``video``: the key of the video it was decoding, where that is known. The message
    is torch's own, so that the group's stop signals still read as an interruption.
    """

    def __init__(self, message: str, signum: int, video: str | None) -> None:
        super().__init__(message)
        self.signum = signum
        self.video = video


def _dead_worker(iterator: Any, todo: Sequence[VideoItem], e: RuntimeError) -> DecoderDied | None:
    """torch's "DataLoader worker (pid N) is killed by signal" (or "exited unexpectedly") as :class:`DecoderDied`,
    naming the video the dead worker held (the first task sent to it without an answer); None for any other error.
    """
    import signal

    text = str(e)
    if "DataLoader worker" not in text or ("killed by signal" not in text and "exited unexpectedly" not in text):
        return None
    workers = list(getattr(iterator, "_workers", None) or [])
    dead = {}
    for wid, w in enumerate(workers):
        code = getattr(w, "exitcode", None)
        if isinstance(code, int) and code < 0:
            dead[wid] = -code
    if not dead:  # the process is gone already: the signal's name in torch's message
        names = {signal.strsignal(s) or s.name: int(s) for s in signal.Signals}
        signum = next((n for name, n in names.items() if f"signal: {name}" in text), None)
        return None if signum is None else DecoderDied(text, signum, None)
    wid = min(dead)
    tasks = getattr(iterator, "_task_info", None) or {}
    held = sorted(i for i, info in tasks.items() if len(info) == 1 and info[0] == wid and 0 <= i < len(todo))
    return DecoderDied(text, dead[wid], todo[held[0]].key if held else None)


def _loop(
    iterator: Iterator[Any],
    todo: Sequence[VideoItem],
    spec: ViewSpec,
    options: EvalOptions,
    label_index: Mapping[str, int],
    timing: Timing,
    write: Callable[[dict[str, Any]], None],
    run_batch: Callable[[], None],
    queue: list[tuple[_Pending, int]],
) -> None:
    """Take each decoded video from the loader, queue its views, run full batches, then the rest."""
    while True:
        t0 = time.perf_counter()
        try:
            index, got = next(iterator)
        except StopIteration:
            break
        finally:
            timing.wait_s += time.perf_counter() - t0
        item = todo[index]
        timing.videos += 1
        if isinstance(got, tuple):
            # Earlier videos still in the queue are written first: lines stay in dataset order.
            while queue:
                run_batch()
            write(_skip_record(item, *got))
            continue
        timing.decode_s += got.decode_s
        timing.resize_s += got.resize_s
        views = len(got.clips) * spec.crops
        pending = _Pending(item, got, label_index[item.label], views, left=views)
        queue.extend((pending, v) for v in range(views))
        while len(queue) >= options.batch:
            run_batch()
    while queue:
        run_batch()
