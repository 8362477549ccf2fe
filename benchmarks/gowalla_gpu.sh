#!/usr/bin/env bash
# The Gowalla recipes on a GPU, in one short job: each committed recipe alone for 20 epochs
# (its time per epoch with the device to itself), then every variant of
# benchmarks/gowalla_sweep.py side by side on the same device for SWEEP_MINUTES each (their
# times are upper bounds: the runs share the GPU). Data from $HYBRIDREC_DATA/gowalla.
#
# Usage: bash benchmarks/gowalla_gpu.sh OUT [SWEEP_MINUTES] [DEVICE]
set -u
OUT=${1:?usage: gowalla_gpu.sh OUT [SWEEP_MINUTES] [DEVICE]}
MIN=${2:-5.5}
DEV=${3:-cuda}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
timeout 240 python benchmarks/gowalla_sweep.py --device "$DEV" --jobs 1 --only lgcn-recipe mf-recipe ngcf-h25-l2e-3 \
    --epochs 20 --eval-every 10 --wall-minutes 1.2 --threads 4 --out "$OUT/solo" || exit 1
python benchmarks/gowalla_sweep.py --device "$DEV" --jobs 12 --eval-every 25 --wall-minutes "$MIN" --threads 1 \
    --out "$OUT/sweep"
