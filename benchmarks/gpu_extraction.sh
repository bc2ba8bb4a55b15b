#!/usr/bin/env bash
# The GPU path on a CUDA machine: the container contract on CUDA, then exact and fast mode CVs/s.
#
#   bash benchmarks/gpu_extraction.sh [LIMIT]      # from the repository root; default 200 CVs
#
# Made for one short run on a lent GPU machine (the session's device tool runs it in a copy of the
# working tree; carry ../shared or set INPUT). Steps:
#   1. the device (nvidia-smi, torch);
#   2. tests/modal/test_modal_container.py: modal_workers/app.py imported and run as a Modal container runs it
#      (only the image's dependency group, only the image's files, no uv), here on CUDA: the keywords of
#      rated CVs must equal KeyBERT's on the same GPU, and clustering must run on CUDA;
#   3. benchmarks/extraction.py in shards of 32 and of 128: exact and fast mode CVs/s against the study's
#      per-CV KeyBERT loop on the same GPU, Jaccard agreement, peak GPU memory.
# On a machine without CUDA every step still runs (on CPU), which is how the script itself is tested.
# Output goes to stdout and, where the device tool set $OUT, to $OUT/gpu_extraction.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${1:-200}"
INPUT="${INPUT:-../shared/data/rated_cvs.csv}"
LOG="${OUT:-/tmp}/gpu_extraction.txt"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi: running on CPU"
  uv sync --frozen --quiet
  uv run python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  uv run pytest tests/modal/test_modal_container.py -q -p no:warnings
  for chunk in 32 128; do
    uv run python benchmarks/extraction.py --limit "$LIMIT" --chunk "$chunk" --input "$INPUT"
  done
} 2>&1 | grep -v "Loading weights" | tee "$LOG"
