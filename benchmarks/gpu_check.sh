#!/usr/bin/env bash
# Everything that needs a GPU, in one run of about six minutes: the GPU tests, the quickstart on the
# GPU, the GPU benchmark (with PyTorch's CUDA step beside it where torch is installed; the step with
# and without a CUDA graph), whole epochs of `train --arch dcgan --device gpu`, with and without
# --cuda-graph, against PyTorch's standard loop, then every speed target's ratio (benchmarks/targets.py),
# and last the kernels, layers and eval in detail.
# Run from the repository root on a machine with CuPy and a CUDA device; logs go to $OUT (or gpu-check/).
# MNIST is read from $MNIST_DIR, else from gpu-data/mnist (an ignored folder, for a copy carried to a
# lent machine), else from ../shared/data/mnist beside the checkout; without one the eval and epoch
# sections say they were skipped.
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
out=${OUT:-gpu-check}
data=()
if [ -n "${MNIST_DIR:-}" ]; then data=(--data-dir "$MNIST_DIR"); elif [ -d gpu-data/mnist ]; then data=(--data-dir gpu-data/mnist); fi
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python -m tinygan info | tee "$out/info.txt"
# The tests and the quickstart run code that has never run on a GPU before (the fused kernels, the
# captured step): each is stopped if it hangs, so that the benchmarks after it still get their time.
# They took 35 s and a few seconds on an H200.
section() {   # section SECONDS LOG COMMAND...: run, log, and say so if it was stopped
    local limit=$1 log=$2
    shift 2
    timeout --signal=INT --kill-after=15 "$limit" "$@" 2>&1 | tee "$log"
    local code=${PIPESTATUS[0]}
    if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then echo "gpu_check: stopped after $limit s: $*" | tee -a "$log"; fi
    return "$code"
}
section 240 "$out/pytest-gpu.log" python -m pytest -q -m gpu -p no:cacheprovider || status=1
section 120 "$out/quickstart-gpu.log" python examples/quickstart.py gpu || status=1
# The benchmark in three runs, what the targets rest on first, so that a section that fails on its first
# GPU costs its own figures only: the training steps, whole epochs, the targets' verdicts, then the
# kernels, layers and eval.
python -m benchmarks --device gpu --full --only step --json "$out/step-gpu.json" 2>&1 \
    | tee "$out/step-gpu.txt" || status=1
python -m benchmarks --device gpu --only epoch --arch dcgan ${data[@]+"${data[@]}"} --json "$out/epoch-gpu.json" 2>&1 \
    | tee "$out/epoch-gpu.txt" || status=1
reports=()   # the targets, before the details: should the run be stopped in them, the verdicts are out
for report in "$out/step-gpu.json" "$out/epoch-gpu.json"; do [ -f "$report" ] && reports+=("$report"); done
python -m benchmarks.targets ${reports[@]+"${reports[@]}"} 2>&1 | tee "$out/targets.txt" || status=1
python -m benchmarks --device gpu --full --only kernels --only layers --only eval ${data[@]+"${data[@]}"} \
    --json "$out/detail-gpu.json" 2>&1 | tee "$out/detail-gpu.txt" || status=1
exit $status
