#!/usr/bin/env bash
# Everything that needs a GPU, in one run: the GPU tests, the quickstart on the GPU, and the
# GPU benchmark (with PyTorch's CUDA step beside it where torch is installed).
# Run from the repository root on a machine with CuPy and a CUDA device; logs go to $OUT (or gpu-check/).
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
out=${OUT:-gpu-check}
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python -m tinygan info | tee "$out/info.txt"
python -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tee "$out/pytest-gpu.log" || status=1
python examples/quickstart.py gpu 2>&1 | tee "$out/quickstart-gpu.log" || status=1
python -m benchmarks --device gpu --full --json "$out/benchmark-gpu.json" 2>&1 | tee "$out/benchmark-gpu.txt" || status=1
exit $status
