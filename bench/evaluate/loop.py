"""``vbench evaluate``: top-1/top-5 of a model on the user's videos, by a named protocol, nothing lost.

The loop (:func:`evaluate`): DataLoader workers decode and resize each video
(:func:`bench.evaluate.video.read_video`); this process cuts the views, runs the model
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
run wrote included; numbers (:func:`bench.evaluate.metrics.compute_metrics`) are computed apart from
their formatting (the CLI's).

Protocols (:func:`bench.evaluate.protocols.protocols`) name the views the papers, model zoos and
torchvision evaluate with; each family's file declares its own and says where
it comes from.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import archs
from bench.errors import OutputError, UsageError, first_line
from bench.evaluate.datasets import Dataset, VideoItem, class_indices
from bench.evaluate.video import DecodedVideo, VideoError, ViewSpec, make_views, read_video

if TYPE_CHECKING:
    import torch


__all__ = ["DecoderDied", "EvalOptions", "EvalResult", "check_eval_options", "decoder_died", "evaluate"]

from bench.evaluate.metrics import TOP_K, Metrics, Timing, compute_metrics
from bench.evaluate.store import (
    RETRIED_REASONS,
    EvalWriter,
    claim_eval_out,
    fingerprint,
    keep_previous,
    sha256_text,
)
from bench.results.evaluation import EVAL_FILES, SCHEMA_VERSION


@dataclass(frozen=True)
class EvalOptions:
    """How to run (none of it changes the numbers, except ``dtype``)."""

    batch: int = 8
    device: str = "cpu"
    dtype: str = "fp32"
    workers: int = 0


def check_eval_options(*, batch: int, workers: int | None, resume: bool, overwrite: bool) -> None:
    """The options of :func:`evaluate` that need no file, named by their ``--option`` (the command line checks
    them with this before any work; ``workers`` None: its default).

    Raises:
        UsageError: the first problem found.
    """
    if batch < 1:
        raise UsageError(f"--batch must be >= 1; got {batch}")
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be >= 0; got {workers}")
    if resume and overwrite:
        raise UsageError("--only-missing keeps the evaluation in --out and --overwrite replaces it; pass one")


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

    The decoding workers (``options.workers`` > 0) are started with ``spawn``, never forked (a fork from a process
    with threads can deadlock): a script that calls this needs the ``if __name__ == "__main__":`` guard, as for any
    DataLoader with spawned workers.

    A signal (:class:`bench.run.lifetime.Interrupted`) or any other exception writes ``evaluation.json`` with
    state ``interrupted`` (counts and accuracy of what finished) and is re-raised.

    Raises:
        UsageError: a label outside ``classes``, options :func:`check_eval_options` refuses, an unusable or foreign ``out_dir``, an earlier evaluation of
            other settings (with ``resume``), a model whose output does not have ``len(classes)`` logits.
    """
    import torch

    meta = dict(meta or {})
    label_index = class_indices(dataset.labels, classes, meta.get("classes_source", "the class list"))
    check_eval_options(batch=options.batch, workers=options.workers, resume=resume, overwrite=overwrite)
    device = torch.device(options.device)
    out = claim_eval_out(Path(out_dir), resume, overwrite)
    base = _base_doc(model, spec, dataset, classes, meta, options)
    records, retried, gone = keep_previous(out, base["fingerprint"], dataset, len(classes)) if resume else ([], [], [])
    kept = len(records)
    if resume:
        base["resumed"] = {
            "kept": kept,
            "retried": len(retried),
            "retried_reasons": list(RETRIED_REASONS),
            "dropped_unlisted": len(gone),
        }
    run = _Evaluation(EvalWriter(out, base), classes, records, Timing(workers=options.workers), on_video)
    todo, missing = run.todo(dataset)
    announce = None
    if on_start is not None:
        announce = functools.partial(on_start, len(todo) + len(missing), list(records), len(retried), len(gone))
    run.run(missing, _Batches(model, spec, todo, label_index, device, options, run), announce)
    paths = {name.split(".")[0]: out / name for name in EVAL_FILES}
    return EvalResult(
        out, run.state, run.metrics, run.timing, kept, paths, run.doc, retried=len(retried), dropped=len(gone)
    )


def _base_doc(
    model: Any,
    spec: ViewSpec,
    dataset: Dataset,
    classes: Sequence[str],
    meta: Mapping[str, Any],
    options: EvalOptions,
) -> dict[str, Any]:
    """What ``evaluation.json`` records whatever the outcome: arch, weights, input, protocol, dataset, classes,
    options, environment, and the fingerprint that ``--only-missing`` compares."""
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
        "classes": {"source": meta.get("classes_source", ""), "count": len(classes), "sha256": sha256_text(classes)},
        "options": meta.get("options", {}),
        "environment": _environment(options),
    }
    base["fingerprint"] = fingerprint({**meta, "dataset": base["dataset"]}, spec, classes, options.dtype)
    return base


@dataclass
class _Evaluation:
    """One evaluation while it runs: its writer, its lines (those kept and those written), its timing, and at
    the end its state, metrics and summary."""

    writer: EvalWriter
    classes: Sequence[str]
    records: list[dict[str, Any]]
    timing: Timing
    on_video: Callable[[dict[str, Any]], None] | None
    state: str = "interrupted"
    doc: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = compute_metrics(self.records, len(self.classes))

    def todo(self, dataset: Dataset) -> tuple[list[VideoItem], list[tuple[VideoItem, str, str]]]:
        """The videos to decode, and those without a line yet that cannot be (each with why), in dataset order."""
        done = {r["video"] for r in self.records}
        todo = [it for it in dataset.items if it.key not in done]
        missing = [(it, "missing", f"no file at {it.path}") for it in dataset.missing if it.key not in done]
        missing += [(it, reason, detail) for it, reason, detail in dataset.unusable if it.key not in done]
        missing.sort(key=lambda m: dataset.order.get(m[0].key, 0))
        return todo, missing

    def write(self, record: dict[str, Any]) -> None:
        """One prediction or skip line: on disk first, then counted, then told."""
        self.writer.line(record)
        self.records.append(record)
        if self.on_video is not None:
            self.on_video(record)

    def run(
        self, missing: list[tuple[VideoItem, str, str]], batches: _Batches, on_start: Callable[[], None] | None
    ) -> None:
        """The summary ``running``, the skip lines of the missing videos, the loop; whatever happens, the summary
        of what finished (``complete`` or ``interrupted``) and the files closed."""
        num_classes = len(self.classes)
        try:
            self.doc = self.writer.summary("running", self.metrics, self.timing, self.classes)
            if on_start is not None:
                on_start()
            for item, reason, detail in missing:
                self.write(_skip_record(item, reason, detail))
            started = time.perf_counter()
            try:
                batches.run()
            finally:
                self.timing.wall_s = time.perf_counter() - started
            self.state = "complete"
        finally:
            self.metrics = compute_metrics(self.records, num_classes)
            try:
                self.doc = self.writer.summary(self.state, self.metrics, self.timing, self.classes)
            except OutputError:
                if self.state == "complete":
                    raise
                # otherwise the error already on its way says more
            finally:
                with contextlib.suppress(OSError):
                    self.writer.close()


def _skip_record(item: VideoItem, reason: str, detail: str) -> dict[str, Any]:
    return {"video": item.key, "status": "skipped", "label": item.label, "reason": reason, "detail": detail}


@dataclass
class _Batches:
    """The loop of one evaluation: the DataLoader's decoded videos in, their views queued in video order and run
    through the model in batches, each video's line written (:meth:`_Evaluation.write`) when its last view is done.
    """

    model: Any
    spec: ViewSpec
    todo: Sequence[VideoItem]
    label_index: Mapping[str, int]
    device: torch.device
    options: EvalOptions
    evaluation: _Evaluation
    queue: list[tuple[_Pending, int]] = field(default_factory=list)
    """Views waiting for the model, in video order."""

    def run(self) -> None:
        """Every video of ``todo``; a decoding worker's death is :class:`DecoderDied` (unless every video had its
        line by then), and the workers are shut down whatever happens."""
        if not self.todo:
            return
        self.model.eval()
        iterator: Iterator[Any] = iter(self._loader())
        finished = False
        try:
            self._loop(iterator)
            finished = True
        except RuntimeError as e:
            died = _dead_worker(iterator, self.todo, e)
            if died is None:
                raise
            raise died from None
        finally:
            shutdown = getattr(iterator, "_shutdown_workers", None)
            try:
                if shutdown is not None:
                    shutdown()
            except RuntimeError as e:  # torch's SIGCHLD handler can report a worker's death while it is shut down
                died = _dead_worker(iterator, self.todo, e)
                if died is None:
                    raise
                if not finished:  # every video has its line when it finished: the death cost nothing
                    raise died from None
            del iterator

    def _loader(self) -> Any:
        from torch.utils.data import DataLoader

        workers = self.options.workers
        return DataLoader(
            _Videos(self.todo, self.spec),  # type: ignore[arg-type]
            batch_size=None,
            shuffle=False,
            num_workers=workers,
            collate_fn=_identity,
            worker_init_fn=_worker_init if workers else None,
            prefetch_factor=2 if workers else None,
            # Started fresh, never forked: a fork copies whatever lock another thread of this process held at that
            # moment (torch's thread pools, a progress bar's refresh, a test runner's), and the worker can wait on
            # it for ever. Seen twice: two workers asleep in futex_wait, one under pytest-xdist, one under pytest.
            multiprocessing_context="spawn" if workers else None,
        )

    def _loop(self, iterator: Iterator[Any]) -> None:
        """Take each decoded video from the loader, queue its views, run full batches, then the rest."""
        timing, queue = self.evaluation.timing, self.queue
        while True:
            t0 = time.perf_counter()
            try:
                index, got = next(iterator)
            except StopIteration:
                break
            finally:
                timing.wait_s += time.perf_counter() - t0
            item = self.todo[index]
            timing.videos += 1
            if isinstance(got, tuple):
                # Earlier videos still in the queue are written first: lines stay in dataset order.
                while queue:
                    self._run_batch()
                self.evaluation.write(_skip_record(item, *got))
                continue
            timing.decode_s += got.decode_s
            timing.resize_s += got.resize_s
            views = len(got.clips) * self.spec.crops
            pending = _Pending(item, got, self.label_index[item.label], views, left=views)
            queue.extend((pending, v) for v in range(views))
            while len(queue) >= self.options.batch:
                self._run_batch()
        while queue:
            self._run_batch()

    def _take(self) -> list[tuple[_Pending, int]]:
        """The next batch off the queue: up to ``options.batch`` views of one length (whole-video views of
        different lengths do not share a batch)."""
        queue, crops = self.queue, self.spec.crops
        size = len(queue[0][0].video.clips[queue[0][1] // crops])
        n = 0
        while n < min(self.options.batch, len(queue)):
            p, v = queue[n]
            if len(p.video.clips[v // crops]) != size:
                break
            n += 1
        batch = queue[:n]
        del queue[:n]
        return batch

    def _views(self, batch: list[tuple[_Pending, int]]) -> tuple[torch.Tensor, list[_Pending]]:
        """The batch's views as one tensor on the device (each video's views cut together), and the video
        each view belongs to."""
        import torch

        parts, owners = [], []
        start, n = 0, len(batch)
        while start < n:
            end = start
            while end < n and batch[end][0] is batch[start][0]:
                end += 1
            p = batch[start][0]
            parts.append(make_views(p.video, self.spec, [v for _, v in batch[start:end]], self.device))
            owners += [p] * (end - start)
            start = end
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), owners

    def _run_batch(self) -> None:
        import torch

        batch = self._take()
        t0 = time.perf_counter()
        x, owners = self._views(batch)
        n, num_classes = len(owners), len(self.evaluation.classes)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.inference_mode(), _autocast(self.device, self.options.dtype):
            logits = self.model(x)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (n, num_classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise UsageError(f"the model returned {shape} for a batch of {n} clips; expected ({n}, {num_classes})")
        probs = logits.float().softmax(-1).cpu()
        t2 = time.perf_counter()
        timing = self.evaluation.timing
        timing.views_s += t1 - t0
        timing.model_s += t2 - t1
        timing.clips += n
        for i, p in enumerate(owners):
            p.prob_sum = probs[i].clone() if p.prob_sum is None else p.prob_sum + probs[i]
            p.left -= 1
            if p.left == 0:
                self._finish(p)

    def _finish(self, p: _Pending) -> None:
        """A video whose views are all done: its line, from the mean of their softmax (never made of NaN)."""
        import torch

        assert p.prob_sum is not None
        probs = p.prob_sum / p.views
        if not bool(torch.isfinite(probs).all()):  # never a prediction made of NaN: a skip, counted
            self.evaluation.write(_skip_record(p.item, "non-finite output", "the model's logits hold NaN or infinity"))
            return
        top = torch.topk(probs, min(TOP_K, len(self.evaluation.classes)))
        pred = int(top.indices[0])
        self.evaluation.write({
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


class DecoderDied(RuntimeError):
    """A decoding worker died of a signal (SIGKILL: most likely the kernel's out-of-memory killer).

    ``signum``: the signal; ``video``: the key of the video it was decoding, where that is known. The message
    is torch's own, so that the group's stop signals still read as an interruption.
    """

    def __init__(self, message: str, signum: int, video: str | None) -> None:
        super().__init__(message)
        self.signum = signum
        self.video = video

    @property
    def stop_signal(self) -> int | None:
        """The stop signal torch's message names (:data:`~bench.run.lifetime.STOP_SIGNALS`; "DataLoader worker
        (pid 12) is killed by signal: Terminated."), else None: a SIGTERM to the whole process group (``timeout``,
        SLURM, ``docker stop``) reaches the workers too, and their death is the interruption, not a crash."""
        from bench.run.lifetime import STOP_SIGNALS

        signum = _named_signal(str(self)) if "killed by signal" in str(self) else None
        return signum if signum in STOP_SIGNALS else None


def _named_signal(text: str) -> int | None:
    """The signal torch's "... is killed by signal: <name>." names, by its description (``strsignal``)."""
    import signal

    names = {signal.strsignal(s) or s.name: int(s) for s in signal.Signals}
    return next((n for name, n in names.items() if f"signal: {name}" in text), None)


def decoder_died(e: RuntimeError) -> DecoderDied | None:
    """torch's DataLoader-worker death in ``e``'s message as :class:`DecoderDied`, where it surfaced outside the loop
    (torch's SIGCHLD handler raises wherever the main thread is) and no video can be named; None for other errors."""
    return e if isinstance(e, DecoderDied) else _dead_worker(None, (), e)


def _dead_worker(iterator: Any, todo: Sequence[VideoItem], e: RuntimeError) -> DecoderDied | None:
    """torch's "DataLoader worker (pid N) is killed by signal" (or "exited unexpectedly") as :class:`DecoderDied`,
    naming the video the dead worker held (the first task sent to it without an answer); None for any other error.
    """
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
        signum = _named_signal(text)
        return None if signum is None else DecoderDied(text, signum, None)
    wid = min(dead)
    tasks = getattr(iterator, "_task_info", None) or {}
    held = sorted(i for i, info in tasks.items() if len(info) == 1 and info[0] == wid and 0 <= i < len(todo))
    return DecoderDied(text, dead[wid], todo[held[0]].key if held else None)
