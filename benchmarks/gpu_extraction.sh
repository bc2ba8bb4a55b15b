#!/usr/bin/env bash
# Exact-mode (and fast-mode) CVs/s on a CUDA GPU, against the study's per-CV loop on the same GPU.
#
#   bash benchmarks/gpu_extraction.sh [LIMIT]      # from the repository root; default 200 CVs
#
# Made for one short run on a lent GPU machine (the session's device tool runs it in a copy of the
# working tree, with ../shared absent unless carried): it syncs the locked environment, prints the
# device, then runs benchmarks/extraction.py in shards of 32. On CUDA, inference runs on PyTorch
# (float32 decides, float16 screens); the reference KeyBERT loop runs on the same model
# reference_model gives; with extraction.precision float16 both sides decide in float16 (large models).
# Output goes to stdout and, where the device tool set $OUT, to $OUT/gpu_extraction.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${1:-200}"
INPUT="${INPUT:-../shared/data/rated_cvs.csv}"
LOG="${OUT:-/tmp}/gpu_extraction.txt"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  uv sync --frozen --quiet
  uv run python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
  uv run python benchmarks/extraction.py --limit "$LIMIT" --chunk 32 --input "$INPUT"
} 2>&1 | grep -v "Loading weights" | tee "$LOG"
