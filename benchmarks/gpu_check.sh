#!/usr/bin/env bash
# Everything that needs a GPU, in one run of about six minutes: the GPU tests, the quickstart on the
# GPU, the GPU benchmark (with PyTorch's CUDA step beside it where torch is installed; the step with
# and without a CUDA graph), whole epochs of `train --arch dcgan --device gpu`, with and without
# --cuda-graph, against PyTorch's standard loop, and at the end every speed target's ratio
# (benchmarks/targets.py).
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
python -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tee "$out/pytest-gpu.log" || status=1
python examples/quickstart.py gpu 2>&1 | tee "$out/quickstart-gpu.log" || status=1
python -m benchmarks --device gpu --full ${data[@]+"${data[@]}"} --json "$out/benchmark-gpu.json" 2>&1 \
    | tee "$out/benchmark-gpu.txt" || status=1
python -m benchmarks --device gpu --only epoch --arch dcgan ${data[@]+"${data[@]}"} --json "$out/epoch-gpu.json" 2>&1 \
    | tee "$out/epoch-gpu.txt" || status=1
python -m benchmarks.targets "$out/benchmark-gpu.json" "$out/epoch-gpu.json" 2>&1 | tee "$out/targets.txt" || status=1
exit $status
