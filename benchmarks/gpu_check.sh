#!/usr/bin/env bash
# Every GPU check in one call, most important first, for a machine with an NVIDIA GPU.
# Runs with the machine's own Python (${PYTHON:-python3}); needs torch, pandas, rich, typer,
# pytest; fvcore is not needed. Each step has its own time limit; the whole script fits in
# about 8 minutes (never yet run on a GPU with the post-2018 families: the grid's limit is a
# budget, and rows it does not reach are timeout rows, not lost):
#   0. self-check (20 s): bench and archs import, CUDA is there, the GPU's name;
#   1. the grid: every registered architecture (the post-2018 families included) at its paper
#      input, infer and train, fp32 and bf16, batch 1 and 8, 2 warm-up and 5 timed iterations or
#      1 s each (270 s);
#   2. the harness overhead against a bare CUDA-event loop, 3 architectures (45 s);
#   3. the CUDA-marked tests (40 s);
#   4. channels-last, --compile and --cuda-graphs on 3 architectures (60 s);
#   5. the --gpus path on GPU 0 (20 s);
#   6. the measured roofline and one time breakdown (inspect --time, r2plus1d_18, bf16, batch 8) (40 s).
# Everything goes under OUT_DIR in at most 8 files (run folders as .tgz); a short table last.
#
#   bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
py=${PYTHON:-python3}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
runs=$(mktemp -d)
export VBENCH_CACHE_DIR=$runs/cache  # the roofline is measured once, by the first worker that needs it
vb() { local limit=$1; shift; timeout "$limit" "$py" -m bench.cli "$@"; }

# 0. Self-check: stop at once if this machine cannot run the rest.
if ! timeout 20 "$py" - > "$out/selfcheck.txt" 2>&1 <<'PY'
import torch, bench, archs
from bench.measure.environment import environment
assert torch.cuda.is_available(), "torch sees no CUDA device"
env = environment("cuda")
print(f"ok: {env['device_name']}, {env['device_memory_mib']} MiB, torch {env['torch_version']}, "
      f"CUDA {env['cuda_version']}, cuDNN {env['cudnn_version']}, {len(archs.list_archs())} architectures")
PY
then
  cat "$out/selfcheck.txt"; echo "self-check failed: nothing else was run"; exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$out/selfcheck.txt" 2>&1

# 1. The grid.
start=$(date +%s)
vb 270 profile --arch all --device cuda --batch 1,8 --mode both --dtype fp32,bf16 \
  --warmup 2 --repeats 5 --max-time 1 --timeout 60 --out "$runs/grid" > "$runs/grid.log" 2>&1
echo "grid exit code $? after $(( $(date +%s) - start )) s" >> "$runs/grid.log"

# 2. Harness overhead against a bare CUDA-event loop.
timeout 45 "$py" benchmarks/overhead.py --device cuda --rounds 3 --per-round 10 --out "$out/overhead_cuda.md" \
  > "$runs/overhead.log" 2>&1

# 3. The CUDA tests.
timeout 40 "$py" -m pytest -q -p no:cacheprovider -m cuda tests/test_bench_cuda.py > "$out/pytest_cuda.txt" 2>&1

# 4. Options, 3 architectures each.
three=(--arch r2plus1d_18 --arch r3d_18 --arch s3d --device cuda --batch 8 --warmup 3 --repeats 10 --max-time 2)
vb 15 profile "${three[@]}" --dtype bf16 --channels-last --out "$runs/channels_last" > "$runs/options.log" 2>&1
vb 30 profile "${three[@]}" --dtype bf16 --compile --warmup 5 --out "$runs/compile" >> "$runs/options.log" 2>&1
vb 15 profile "${three[@]}" --cuda-graphs --out "$runs/cuda_graphs" >> "$runs/options.log" 2>&1

# 5. One worker per GPU slot, on GPU 0.
vb 20 profile --arch 'mc*' --device cuda --gpus 0 --batch 8 --warmup 3 --repeats 10 --max-time 2 \
  --out "$runs/gpus" > "$runs/gpus.log" 2>&1

# 6. The roofline and where the time goes on the GPU (the breakdown JSON holds the roofline too).
vb 40 inspect r2plus1d_18 --time --device cuda --dtype bf16 --batch 8 --json > "$out/breakdown_cuda.json" \
  2> "$runs/breakdown.log"

# The short table, then the files (at most 8).
{
  echo "== vbench GPU check =="
  head -1 "$out/selfcheck.txt"
  tail -1 "$runs/grid.log"
  for d in grid channels_last compile cuda_graphs gpus; do
    if [ -f "$runs/$d/results.csv" ]; then
      "$py" - "$runs/$d/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["status"] != "ok"]
print(f"{sys.argv[1].split('/')[-2]}: {len(rows)} rows, {len(rows) - len(bad)} ok; not ok: "
      + (", ".join(f"{r['arch']}/{r['mode']}/b{r['batch']}/{r['dtype']}={r['status']}" for r in bad[:8]) or "none"))
PY
    else
      echo "$d: no results ($(tail -1 "$runs/$d.log" 2>/dev/null || echo 'see logs'))"
    fi
  done
  echo "cuda tests: $(tail -1 "$out/pytest_cuda.txt")"
  grep '^|' "$out/overhead_cuda.md" 2>/dev/null || echo "overhead: $(tail -1 "$runs/overhead.log")"
  "$py" - "$out/breakdown_cuda.json" <<'PY' 2>/dev/null || echo "breakdown: $(tail -1 "$runs/breakdown.log")"
import json, sys
b = json.load(open(sys.argv[1])); r = b["roofline"]
print(f"roofline {r['dtype']}: peak {r['peak_tflops']:.1f} TFLOP/s, {r['bandwidth_gbs']:.0f} GB/s, ridge "
      f"{r['ridge_flop_per_byte']:.0f} FLOP/B; r2plus1d_18 b8 bf16: {b['latency_ms']:.2f} ms, sum check "
      f"{100 * b['sum_ratio']:.1f} %, profiler {100 * b['profiler_ratio']:.1f} %; kinds: "
      + ", ".join(f"{k['kind']} {100 * k['pct_time']:.0f} %" for k in b["kinds"]))
PY
} > "$out/summary.txt"
tar -czf "$out/grid.tgz" -C "$runs" grid 2>/dev/null
tar -czf "$out/options.tgz" -C "$runs" channels_last compile cuda_graphs gpus 2>/dev/null
tar -czf "$out/logs.tgz" -C "$runs" grid.log overhead.log options.log gpus.log breakdown.log 2>/dev/null
rm -rf "$runs"
cat "$out/summary.txt"
