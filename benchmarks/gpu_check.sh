#!/usr/bin/env bash
# GPU check: every model family trains and evaluates on CUDA through the CLI, on real data,
# and the PinSage scale benchmark runs on the GPU. Each step's output goes to OUT/<step>.log,
# its run folder under OUT/runs; the last lines say which steps passed.
#
# Usage: bash benchmarks/gpu_check.sh OUT [TEXT_MODEL] [LLM] [DEVICE]
#   TEXT_MODEL  sentence-transformers folder or hub name (default: the offline MiniLM)
#   LLM         causal LM folder or hub name for --mode llm (default: the offline SmolLM2)
#   DEVICE      default cuda; `cpu` runs the same steps here (slowly) to try the script
# Data sets are read from $HYBRIDREC_DATA (ml-100k, ml-latest-small).
set -u
OUT=${1:?usage: gpu_check.sh OUT [TEXT_MODEL] [LLM] [DEVICE]}
TEXT=${2:-}
LLM=${3:-}
DEV=${4:-cuda}
EPOCHS=${GPU_CHECK_EPOCHS:-}   # e.g. 2 for a quick try of the script itself
mkdir -p "$OUT/runs"
export PYTHONUNBUFFERED=1
status=()

step() {  # step NAME COMMAND...
    local name=$1; shift
    local t0=$SECONDS
    echo "== $name: $*"
    if "$@" >"$OUT/$name.log" 2>&1; then
        status+=("$name: ok ($((SECONDS - t0)) s)")
    else
        status+=("$name: FAILED rc=$? ($((SECONDS - t0)) s), see $name.log")
    fi
    tail -n 25 "$OUT/$name.log"
}

common=(--device "$DEV" --quiet --out-dir "$OUT/runs")
[ -n "$EPOCHS" ] && common+=(--set "train.epochs=$EPOCHS")
text=(); [ -n "$TEXT" ] && text=(--set "model.params.text_model=$TEXT")
llm=(); [ -n "$LLM" ] && llm=(--model "$LLM")

python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

step collab python -m hybridrec.run --config configs/ml-100k.yaml --model popularity,mf,lightgcn,ngcf,gfcf "${common[@]}"
step hybrid python -m hybridrec.run --mode hybrid --dataset ml-100k "${text[@]}" "${common[@]}"
step pinsage python -m hybridrec.run --config configs/pinsage-ml-latest-small.yaml "${text[@]}" "${common[@]}"
step llm python -m hybridrec.run --mode llm --dataset ml-100k "${llm[@]}" --set candidates.n_users=20 "${common[@]}"
if [ -z "$EPOCHS" ]; then
    step scale python benchmarks/pinsage_scale.py --device "$DEV" --compare-scale 10 --quiet --out "$OUT/scale"
fi

echo "== summary"
printf '%s\n' "${status[@]}" | tee "$OUT/summary.txt"
