"""The timing gate's A/A false-alarm rate and its power on a known 10 % slowdown (issue 23, item 6).

``vbench compare`` fails a pull request when a row's latency grew beyond the tolerance *significantly*
(:mod:`bench.results.compare`). How often does it fail when nothing changed, and how often does it catch a real
10 % slowdown? This script times many pairs of small runs and judges each pair with that gate, the
code ``vbench compare`` runs (:func:`bench.results.compare.compare_rows`), with the project's tolerances
(``[tool.vbench.compare]`` of pyproject.toml: latency 10 %, alpha 0.05).

Three conditions, the same number of pairs each, every side timed in a worker of its own as ``vbench profile``
times it (the plugin ``benchmarks/gate_plugin.py`` registers copies of ``--arch`` under names of their
own, so one ``vbench profile`` run holds every side, and the start-up of its parent is paid once):

- **A/A**: base and head are the architecture itself (``gate_a_<i>``, ``gate_b_<i>``). Any failure is a
  false alarm.
- **10 % slower**: the head (``gate_s_<i>``) is the architecture plus a known extra cost: matrix
  products calibrated here, before the runs, to 10 % of the model's forward time; the same pair's base
  (``gate_a_<i>``). A failure is a detection. The extra cost is verified twice: in this process
  (model and model + extra timed alternately) and from the runs (the head's median over the base's,
  per pair, the median of those ratios).
- **A/A, head half contended**: base and head are the architecture itself (``gate_ca_<i>``,
  ``gate_cb_<i>``); two busy processes (``while True: pass``, started at once and held stopped) run
  from the head's first timed sample through the middle one (the plugin counts forwards on disk), as
  the issue's "contention in part of the run"; with ``--rounds R`` (R > 1), through every timed sample
  of the head's first R // 2 rounds instead, the rest of its rounds quiet. A failure is a false alarm;
  ``inconclusive`` (the gate saw ``contended``) or a pass on the quiet rounds is the wanted answer.

The order of the sides changes from pair to pair (all six orders of a, b, s; ca and cb alternate) and
the conditions are interleaved pair by pair, so drift of the machine falls on all of them alike. With ``--rounds R``, every side is timed in R rounds (``vbench profile --rounds``: one worker
per side per round, every side of the chunk once per round), so the gate tests the rounds' medians
where it can (``docs/compare.md``). Rates
are counts with a 95 % Wilson interval. With ``--reduced``, the report says it is a reduced run (its
format checked, its numbers not to be read as the gate's rates).

    python benchmarks/gate_power.py [--pairs 40] [--budget 330] [--arch r3d_18] [--frames 8] [--size 32] [--repeats 20]
                                    [--rounds 1]

Cost: 5 worker processes per pair and round (a few seconds each on 2 cores: importing torch dominates at this
size), in chunks of ``--chunk`` pairs, each chunk one ``vbench profile`` run; a chunk is started only
while the ``--budget`` (330 s) can hold it, judged by the slowest chunk so far, so the whole script,
calibration included, takes about 6 minutes and runs as many pairs (up to ``--pairs``) as the machine
allows in that time: about 20 to 25 on a quiet 2-core machine, at about 3 s a worker (an estimate; the
reduced run's 10 workers took 171 s on a machine loaded 4x over). The report says how many ran.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = Path(__file__).resolve().parent / "gate_plugin.py"
TARGET = 0.10
"""The extra cost of the slow head, as a share of the model's forward time."""
POLL_S = 0.005
"""How often the busy processes' driver reads the forward counts (a forward at this size takes tens of ms)."""


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a rate of ``k`` in ``n``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def calibrate(arch: str, frames: int, size: int, n: int) -> tuple[int, float, float, float]:
    """Matrix products that cost ``TARGET`` of the model's forward: (count, model ms, product ms, check ratio).

    Times the model and one product in this process (torch's default threads, as a worker has them), sets
    the count, corrects it (at most 3 times) from the model alone and the model with the extra timed
    alternately, then times them alternately 15 times each and returns the ratio of their medians as a check.
    """
    import torch

    import archs

    model = archs.create_model(arch).eval()
    x = torch.randn(1, 3, frames, size, size)
    a = torch.randn(n, n)
    b = torch.linalg.qr(torch.randn(n, n))[0]

    def timed(fn: Any, k: int) -> float:
        out = []
        for _ in range(k):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return statistics.median(out) * 1e3

    def products(count: int) -> Any:
        z = a
        for _ in range(count):
            z = z @ b
        return z

    with torch.inference_mode():
        for _ in range(3):
            model(x)
        model_ms = timed(lambda: model(x), 15)
        unit_ms = timed(lambda: products(50), 15) / 50
        count = max(1, round(TARGET * model_ms / unit_ms))
        for _ in range(3):  # refine on alternate timings, which drift of the machine hits alike
            ratio = _alternate(lambda: model(x), lambda c=count: (model(x), products(c)), timed, 9)
            if abs(ratio - 1 - TARGET) < 0.01:
                break
            if ratio > 1 + TARGET / 4:  # a ratio near or below 1 is noise (a busy machine), not a cost to scale
                scale = min(2.0, max(0.5, TARGET / (ratio - 1)))  # a step at most 2x: one noisy ratio cannot run away
                count = max(1, round(count * scale))
        check = _alternate(lambda: model(x), lambda: (model(x), products(count)), timed, 15)
    return count, model_ms, unit_ms, check


def _alternate(plain: Any, slow: Any, timed: Any, k: int) -> float:
    """The ratio of medians of ``slow`` over ``plain``, timed alternately ``k`` times each."""
    a, b = [], []
    for _ in range(k):
        a.append(timed(plain, 1))
        b.append(timed(slow, 1))
    return statistics.median(b) / statistics.median(a)


def order(i: int) -> list[str]:
    """The sides of pair ``i`` in the order they run: the six orders of a, b, s in turn, then ca and cb."""
    triple = list(itertools.permutations(("a", "b", "s")))[i % 6]
    contended = ("ca", "cb") if i % 2 == 0 else ("cb", "ca")
    return [f"gate_{k}_{i}" for k in (*triple, *contended)]


def _busy(n: int) -> list[subprocess.Popen[bytes]]:
    """``n`` spinning processes, stopped (SIGSTOP) until :func:`_hold` lets them run."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    return procs


def _hold(procs: Sequence[subprocess.Popen[bytes]], run: bool) -> None:
    for p in procs:
        p.send_signal(signal.SIGCONT if run else signal.SIGSTOP)


def _marks(folder: Path, name: str) -> tuple[int, int]:
    """(round, forwards) of ``name`` so far: how many worker processes have run a forward of it, and how many
    forwards the latest has run; (0, -1) before its first."""
    try:
        pids = (folder / name).read_text().split("\n")[:-1]  # whole lines: a worker may be writing the last
    except OSError:
        return 0, -1
    if not pids:
        return 0, -1
    last = len(pids) - next((k for k, pid in enumerate(reversed(pids)) if pid != pids[-1]), len(pids))
    return len(dict.fromkeys(pids)), len(pids) - last


def _windows(rounds: int, warmup: int, repeats: int) -> list[tuple[int, int, int]]:
    """(round, first forward, last forward + 1) of a contended head's busy windows: the first timed sample through
    the middle one with one round; every timed sample of the first ``rounds // 2`` rounds with more."""
    if rounds == 1:
        return [(1, warmup, warmup + max(1, repeats // 2))]
    return [(r, warmup, warmup + repeats) for r in range(1, rounds // 2 + 1)]


def contend(
    folder: Path,
    sequence: Sequence[tuple[int, str]],
    windows: Sequence[tuple[int, int, int]],
    procs: Sequence[subprocess.Popen[bytes]],
    done: threading.Event,
) -> list[str]:
    """Run the busy processes through each contended head's ``windows``.

    ``sequence`` is every (round, side) of the run in the order the workers run. Follows the forward counts the
    plugin writes; returns a note for each window it missed (a worker that failed, or samples too fast to catch).
    """
    missed = []
    wanted = {(r, name): (start, stop) for r, name in sequence if name.startswith("gate_cb_")
              for r2, start, stop in windows if r2 == r}  # fmt: skip
    for k, (r, name) in enumerate(sequence):
        if (r, name) not in wanted:
            continue
        start, stop = wanted[(r, name)]
        later = sequence[k + 1 : k + 6]

        def at(count: int, r: int = r, name: str = name, later: Sequence[tuple[int, str]] = later) -> bool:
            """The head's worker of round ``r`` has run ``count`` forwards, or the run has gone past it."""
            got_round, got = _marks(folder, name)
            passed = got_round > r or any(_marks(folder, n)[0] >= rr for rr, n in later)
            return done.is_set() or passed or (got_round == r and got >= count)

        while not at(start):
            time.sleep(POLL_S)
        got_round, got = _marks(folder, name)
        if done.is_set() or got_round != r or got < start:  # the run ended or went past this round
            missed.append(f"{name} round {r}: never started")
            continue
        _hold(procs, True)
        try:
            seen = _marks(folder, name)[1]
            if seen > start:
                missed.append(f"{name} round {r}: busy from sample {seen - start + 1}, not 1")
            while not at(stop):
                time.sleep(POLL_S)
        finally:
            _hold(procs, False)
    return missed


def run_pairs(
    args: argparse.Namespace, tmp: Path, extra: int, pairs: Sequence[int]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """One ``vbench profile`` run of every side of ``pairs``, with the busy processes driven beside it."""
    forwards = tmp / "forwards"
    forwards.mkdir(parents=True)
    names = [name for i in pairs for name in order(i)]
    sequence = [(r, name) for r in range(1, args.rounds + 1) for name in names]  # as --rounds runs them
    env = dict(os.environ, VBENCH_GATE_BASE=args.arch, VBENCH_GATE_EXTRA=str(extra), VBENCH_GATE_N=str(args.n),
               VBENCH_GATE_FORWARDS=str(forwards), VBENCH_GATE_PAIRS=str(args.pairs))  # fmt: skip
    cmd = [sys.executable, "-m", "bench.cli", "profile", "--plugin", str(PLUGIN), *[x for n in names for x in ("--arch", n)],
           "--device", "cpu", "--frames", str(args.frames), "--size", str(args.size), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--rounds", str(args.rounds), "--out", str(tmp / "run")]  # fmt: skip
    procs = _busy(2)
    done = threading.Event()
    missed: list[str] = []
    windows = _windows(args.rounds, args.warmup, args.repeats)
    monitor = threading.Thread(
        target=lambda: missed.extend(contend(forwards, sequence, windows, procs, done)), daemon=True
    )
    try:
        monitor.start()
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    finally:
        done.set()
        monitor.join(timeout=5)
        for p in procs:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
    rows = json.loads((tmp / "run" / "results.json").read_text())["rows"]
    return {r["arch"]: r for r in rows}, missed


def judge(base: dict[str, Any], head: dict[str, Any], arch: str, config: Any) -> tuple[str, int, str]:
    """The gate's latency verdict on one pair (``+`` slower, ``-`` faster, ``?`` inconclusive, ``=`` within the
    tolerance or not significant), ``vbench compare``'s exit code and the verdict's note (what was tested), both
    sides named ``arch``."""
    from bench.results.compare import compare_rows

    comparison = compare_rows([{**base, "arch": arch}], [{**head, "arch": arch}], config)
    latency = [c for c in comparison.changes if c.metric == "latency_ms"]
    mark = latency[0].mark if latency and latency[0].mark in "+-?" else "="
    others = [f"{c.metric} {c.mark}" for c in comparison.changes if c.fails and c.metric != "latency_ms"]
    notes = [latency[0].note if latency else "", f"also failed: {', '.join(others)}" if others else ""]
    return mark, comparison.exit_code, "; ".join(n for n in notes if n)


def _rate(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k}/{n} ({k / n:.0%}; 95 % CI {low:.0%}-{high:.0%})" if n else "0/0"


Verdict = tuple[int, str, int, float, bool, bool, str]
"""(pair, latency mark, compare's exit code, head/base ratio of medians, base contended, head contended, the
verdict's note: what the test tested, when the ratio was beyond the tolerance)."""
CONDITIONS = {"A/A": ("a", "b"), "10 % slower": ("a", "s"), "A/A, head half contended": ("ca", "cb")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=40, help="at most this many pairs of each condition")
    ap.add_argument("--budget", type=float, default=330, help="start no chunk of pairs that would end later (s)")
    ap.add_argument("--chunk", type=int, default=4, help="pairs per vbench profile run")
    ap.add_argument("--arch", default="r3d_18")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="rounds a side (vbench profile --rounds)")
    ap.add_argument("--n", type=int, default=128, help="side of the extra cost's matrices")
    ap.add_argument("--also-tol", default="5%", help="judge the same pairs with this latency tolerance too")
    ap.add_argument("--reduced", action="store_true", help="mark the report as a reduced run (format check only)")
    ap.add_argument("--out", default=str(ROOT / "reports/benchmarks/gate_power.md"))
    args = ap.parse_args()
    from bench.results.compare import load_compare_config

    configs = {
        "the project's (pyproject.toml)": load_compare_config(ROOT / "pyproject.toml"),
        f"latency-tol {args.also_tol}": load_compare_config(ROOT / "pyproject.toml", latency_tol=args.also_tol),
    }
    began = time.monotonic()
    extra, model_ms, unit_ms, check = calibrate(args.arch, args.frames, args.size, args.n)
    print(f"calibrated: model {model_ms:.2f} ms, product {unit_ms:.3f} ms -> {extra} products; in-process check "
          f"{check:.3f}x", flush=True)  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    missed: list[str] = []
    ran, walls = 0, list[float]()
    with tempfile.TemporaryDirectory() as tmp:
        while ran < args.pairs:  # chunks of pairs, each one vbench profile run, while the budget allows another
            n = min(args.chunk, args.pairs - ran)
            if walls and time.monotonic() - began + max(walls) * n / args.chunk > args.budget:
                break
            start = time.monotonic()
            got, lost = run_pairs(args, Path(tmp) / f"chunk{len(walls)}", extra, range(ran, ran + n))
            walls.append(time.monotonic() - start)
            rows.update(got)
            missed += lost
            ran += n
            print(f"{ran} pairs in {time.monotonic() - began:.0f} s", flush=True)
    wall = sum(walls)
    verdicts: dict[str, dict[str, list[Verdict]]] = {t: {c: [] for c in CONDITIONS} for t in configs}
    for i in range(ran):
        for condition, (b, h) in CONDITIONS.items():
            base, head = rows.get(f"gate_{b}_{i}"), rows.get(f"gate_{h}_{i}")
            if not base or not head or base.get("status") != "ok" or head.get("status") != "ok":
                continue
            ratio = head["latency_ms"] / base["latency_ms"]
            flags = bool(base.get("contended")), bool(head.get("contended"))
            for tol, config in configs.items():
                mark, code, note = judge(base, head, args.arch, config)
                verdicts[tol][condition].append((i, mark, code, ratio, *flags, note))
    total = time.monotonic() - began
    lines = _report(args, verdicts, (extra, model_ms, unit_ms, check), missed, wall, total, ran)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _summary(found: dict[str, list[Verdict]]) -> list[str]:
    aa, slow, half = (found[c] for c in CONDITIONS)
    judged = [v for v in slow if v[1] != "?"]
    return [
        f"- **A/A false alarms** (quiet): {_rate(sum(v[1] == '+' for v in aa), len(aa))}.",
        f"- **A/A false alarms, head half contended**: {_rate(sum(v[1] == '+' for v in half), len(half))}; "
        f"inconclusive {sum(v[1] == '?' for v in half)} of {len(half)}.",
        f"- **Power on the 10 % slowdown**: {_rate(sum(v[1] == '+' for v in slow), len(slow))} of all pairs; "
        f"{_rate(sum(v[1] == '+' for v in judged), len(judged))} of those with a verdict (not `?`).",
        f"- **The slowdown as the runs saw it** (pairs with neither side `contended`): {_quiet_ratio(slow)} for "
        f"the 10 % pairs, {_quiet_ratio(aa)} for the A/A pairs.",
    ]


def _quiet_ratio(found: list[Verdict]) -> str:
    quiet = [v[3] for v in found if not (v[4] or v[5])]
    return f"head/base median {statistics.median(quiet):.3f} over {len(quiet)}" if quiet else "no such pair"


def _report(
    args: argparse.Namespace,
    verdicts: dict[str, dict[str, list[Verdict]]],
    calibration: tuple[int, float, float, float],
    missed: list[str],
    wall: float,
    total: float,
    ran: int,
) -> list[str]:
    extra, model_ms, unit_ms, check = calibration
    command = (f"python benchmarks/gate_power.py --pairs {args.pairs} --budget {args.budget:g} --chunk {args.chunk} "
               f"--arch {args.arch} --frames {args.frames} --size {args.size} --repeats {args.repeats} "
               f"--warmup {args.warmup}"
               + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
               + (" --reduced" if args.reduced else ""))  # fmt: skip
    lines = ["# The timing gate: A/A false alarms and power on a known 10 % slowdown", ""]
    if args.reduced:
        lines += [
            "> **A reduced run**, on a shared, loaded machine: it checks the report's format; its counts are too "
            "few, and its machine too busy, to read as the gate's rates. Run the command without `--reduced` on a "
            "quiet machine for those.",
            "",
        ]
    lines += [
        f"`{command}` on {os.cpu_count()} cores: {ran} pairs of each condition (at most {args.pairs}; no chunk of "
        f"{args.chunk} pairs is started that the {args.budget:g} s budget would not hold), {wall:.0f} s for the "
        f"runs, {total:.0f} s in all. Each pair: a "
        f"base and a head, each timed by `vbench profile` "
        + (
            f"in {args.rounds} rounds, a worker of its own in each (`--rounds {args.rounds}`, every side of a chunk "
            "once per round; "
            if args.rounds > 1
            else "in a worker of its own ("
        )
        + f"{args.arch}, 1x3x{args.frames}x{args.size}x{args.size}, batch 1, inference, {args.warmup} warm-up "
        f"forwards, {args.repeats} samples" + (" a round" if args.rounds > 1 else "") + "), "
        "judged by `vbench compare`'s gate (`bench.results.compare.compare_rows`). Latency verdicts: `+` slower beyond "
        "the tolerance and significant (the gate fails: exit 1), `?` inconclusive (a side `contended`: exit 4), "
        "`-` faster, `=` within the tolerance or not significant (pass). Intervals: 95 % Wilson.",
        "",
        f"**The slow head's extra cost**: {extra} products of {args.n}x{args.n} matrices after the model, "
        f"calibrated in this process to {TARGET:.0%} of the model's forward ({model_ms:.2f} ms; one product "
        f"{unit_ms:.3f} ms). Checked in this process (model, and model + extra, alternately, 15 each): "
        f"{check:.3f}x; as the runs saw it: the head/base ratio of the 10 % pairs below, against the A/A pairs'."
        + (
            " **The check is off by more than 3 points: the machine was busy while calibrating, and the slow head "
            "is not a 10 % slowdown.**"
            if abs(check - 1 - TARGET) > 0.03
            else ""
        ),
        "",
        "The gate asks whether the head is slower by *more than* the tolerance (`docs/compare.md`): at the "
        "project's 10 %, a slowdown of exactly 10 % is meant to pass (it fails at most about alpha of the time). "
        f"The same pairs judged at latency-tol {args.also_tol} show what a tighter gate would catch and cost.",
    ]
    for tol, found in verdicts.items():
        lines += [
            "",
            f"## Tolerances: {tol}",
            "",
            "| condition | pairs | fails (`+`) | inconclusive (`?`) | faster (`-`) | pass (`=`) | compare exit 1 "
            "| head/base ratio (median, min-max) |",
            "|---|---:|---|---:|---:|---:|---:|---|",
        ]
        for condition, got in found.items():
            n = len(got)
            count = {m: sum(1 for v in got if v[1] == m) for m in "+?-="}
            ratios = [v[3] for v in got]
            spread = f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})" if ratios else "-"
            lines.append(f"| {condition} | {n} | {_rate(count['+'], n)} | {count['?']} | {count['-']} | "
                         f"{count['=']} | {sum(1 for v in got if v[2] == 1)} | {spread} |")  # fmt: skip
        lines += ["", *_summary(found)]
    if missed:
        lines += ["", f"Contended heads the busy processes missed: {'; '.join(missed)}."]
    first = next(iter(verdicts.values()))
    lines += ["", "## Every pair (the project's tolerances)", "",
              "| pair | condition | verdict | exit | head/base | base contended | head contended | tested |",
              "|---:|---|---|---:|---:|---|---|---|"]  # fmt: skip
    for condition, got in first.items():
        for i, mark, code, ratio, bc, hc, note in got:
            lines.append(f"| {i} | {condition} | `{mark}` | {code} | {ratio:.3f} | {bc} | {hc} | {note or '-'} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
