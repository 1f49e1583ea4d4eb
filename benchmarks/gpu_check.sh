#!/usr/bin/env bash
# GPU check: vector-attention accuracy on CUDA, bf16 training steps of X(2+1)D-M and ViViT-B/16
# with and without TokenLearner (clips/s, peak memory, fraction of the bf16 peak), a one-process
# NCCL torchrun run and the data loader against the GPU, in under 8 minutes on one H100/H200.
# Writes OUT/gpu_check.md, OUT/gpu_check.json and OUT/logs/ (OUT: --out, default
# output/gpu_check); see benchmarks/gpu_check.py --help and BENCHMARKS.md#gpu-check.
#
#   benchmarks/gpu_check.sh                          # the whole check
#   benchmarks/gpu_check.sh --out DIR --batch 4      # another folder, smaller batches
#   benchmarks/gpu_check.sh --parts attention,nccl   # some parts
#   benchmarks/gpu_check.sh --dry-run                # the plan
#
# Runs with $VIDEOTL_PYTHON, else the checkout's .venv, else python3 on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${VIDEOTL_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then
        python="$root/.venv/bin/python"
    else
        python=python3
    fi
fi
exec "$python" "$root/benchmarks/gpu_check.py" "$@"
