#!/usr/bin/env bash
# Every GPU check in one call, for a machine with an NVIDIA GPU (no fvcore needed):
#   1. the CUDA-marked tests;
#   2. `vbench profile --arch all --device cuda` at paper inputs, batch 1 and 8, infer and train, fp32 and bf16;
#   3. channels-last and torch.compile for three architectures;
#   4. the harness overhead against a bare CUDA-event loop;
#   5. the --gpus path on GPU 0 (one worker per GPU slot) for the MC family.
# Full results go to OUT_DIR; a short table is printed last.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [SECONDS_FOR_THE_GRID]
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [SECONDS_FOR_THE_GRID]}
grid_limit=${2:-300}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
vb() { python -m bench.cli "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
timeout 120 python -m pytest -q -m cuda tests/test_bench_cuda.py 2>&1 | tail -15 | tee "$out/pytest_cuda.txt"
timeout "$grid_limit" python -m bench.cli profile --arch all --device cuda --batch 1,8 --mode both --dtype fp32,bf16 \
  --warmup 3 --repeats 10 --max-time 2 --timeout 120 --out "$out/grid" > "$out/grid.log" 2>&1
echo "grid exit code: $?" | tee -a "$out/grid.log"
timeout 150 python -m bench.cli profile --arch r2plus1d_18 --arch r3d_18 --arch s3d --device cuda --batch 8 \
  --dtype bf16 --channels-last --warmup 3 --repeats 10 --max-time 2 --out "$out/channels_last" > "$out/options.log" 2>&1
timeout 200 python -m bench.cli profile --arch r2plus1d_18 --arch r3d_18 --arch s3d --device cuda --batch 8 \
  --dtype bf16 --compile --warmup 5 --repeats 10 --max-time 2 --out "$out/compile" >> "$out/options.log" 2>&1
timeout 90 python -m bench.cli profile --arch 'mc*' --device cuda --gpus 0 --batch 8 --warmup 3 --repeats 10 \
  --max-time 2 --out "$out/gpus" > "$out/gpus.log" 2>&1
timeout 150 python benchmarks/overhead.py --device cuda --rounds 3 --per-round 10 --out "$out/overhead_cuda.md" \
  > "$out/overhead.log" 2>&1

echo; echo "== short table =="
cat "$out/pytest_cuda.txt" | tail -1
for d in grid channels_last compile gpus; do
  [ -f "$out/$d/results.csv" ] && python - "$out/$d/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["status"] != "ok"]
print(f"{sys.argv[1]}: {len(rows)} rows, {len(rows) - len(bad)} ok; not ok: "
      + (", ".join(f"{r['arch']}/{r['mode']}/b{r['batch']}/{r['dtype']}={r['status']}" for r in bad[:8]) or "none"))
PY
done
grep '^|' "$out/overhead_cuda.md" 2>/dev/null || tail -3 "$out/overhead.log"
