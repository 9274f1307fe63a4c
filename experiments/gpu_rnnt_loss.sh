#!/usr/bin/env bash
# Issue 22's device check, prepared on the CPU: one call on an H100/H200 (about 6 minutes).
#
#   make gpu-bundle   # optional: .gpu/whl (absl, pytest, hypothesis; the H200 image of 2026-12-04 had them)
#   device run, carry [".gpu"], timeout_s 540:  bash experiments/gpu_rnnt_loss.sh
#
# 0. experiments/diagnose_rnnt_kernel.py: each kernel pass against plain jnp by vocabulary shape (where it fails);
# 1. the kernel tests with the Pallas kernel compiled by Triton (not interpret mode), and the XLA loss's tests;
# 2. experiments/bench_rnnt_loss.py at the sizes: kernel, XLA, pruned S=5, the plain-JAX reference and
#    torchaudio's CUDA rnnt_loss, ms and peak memory, the bandwidth bound (--hbm_tbps: 4.8 H200, 3.35 H100);
# 3. > 2^31 logits: (8, 1000, 300, 1024) fp32 through the kernel's chunked calls and the XLA path.
# Everything is also written under $OUT (diagnosis.txt, tests.log, bench.txt, huge.txt).
set -uo pipefail
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda ASRJAX_UNVALIDATED_PALLAS_GPU=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
if [ -d .gpu/whl ]; then
  python -m pip install --quiet --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
HBM=$(nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && echo 4.8 || echo 3.35)
timeout 60 python experiments/diagnose_rnnt_kernel.py 2>&1 | grep -v "^[IW][0-9]" | tee "$OUT/diagnosis.txt"
timeout 120 python -m pytest -q -p no:cacheprovider tests/losses/test_rnnt_kernel.py tests/losses/test_rnnt.py -k "not eight_devices" 2>&1 \
  | tee "$OUT/tests.log" | tail -5
timeout 240 python experiments/bench_rnnt_loss.py --sizes=gpu --torchaudio --hbm_tbps="$HBM" --layouts=false 2>&1 \
  | grep -v "^[IW][0-9]" | tee "$OUT/bench.txt"
timeout 120 python experiments/bench_rnnt_loss.py --sizes=huge --dtypes=float32 --layouts=false --reference=false \
  --prune_range=0 --repeats=2 --hbm_tbps="$HBM" 2>&1 | grep -v "^[IW][0-9]" | tee "$OUT/huge.txt"
