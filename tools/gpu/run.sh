#!/usr/bin/env bash
# One run on a GPU machine, everything into one folder (issue 14): the adapter, `trainer bench`
# for fast and seed next to the PyTorch peer on CUDA, the seed network trained with MSE for most
# of the time left and fine-tuned with the perceptual loss, both evaluated on the held-out knee.
#
#   tools/gpu/run.sh OUT [MINUTES]        (default 9 minutes in all)
#
# Environment: PRESET (seed; tiny for a dry run), TRAINER (a built trainer binary; default: cargo run --release -p trainer),
# BACKEND (wgpu, or cuda for a --features cuda build), DATA (default ../shared/data),
# PYTHON (a Python with torch for the peer; none: the peer is skipped), PEER (peer_torch.py).
# What the machine needs: see README, "A GPU run in one command".
set -uo pipefail
out=${1:?usage: tools/gpu/run.sh OUT [MINUTES]}
minutes=${2:-9}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
data=${DATA:-../shared/data}
backend=${BACKEND:-wgpu}
preset=${PRESET:-seed}   # tiny: a dry run of the whole script on a software device
trainer=${TRAINER:-}
if [[ -z "$trainer" ]]; then cargo build -q --release -p trainer && trainer=${CARGO_TARGET_DIR:-target}/release/trainer; fi
end=$(( $(date +%s) + minutes * 60 ))
left() { echo $(( end - $(date +%s) )); }
log() { echo "== $* ($(left) s left)" | tee -a "$out/run.log"; }

log "adapter and machine"
{ nvidia-smi -L 2>/dev/null || true; nproc; } | tee -a "$out/run.log"

log "bench: fast and seed, burn on $backend next to PyTorch"
peer=()
[[ -n "${PYTHON:-}" ]] && peer=(--torch-python "$PYTHON" --peer "${PEER:-$data/../tools/peers/peer_torch.py}" --peer-device cuda)
timeout $(( $(left) / 5 )) "$trainer" bench --backend "$backend" --volume "$data/ref/knee_dess_echo1.nii.gz" \
  --edge 96 --presets "fast,$preset" --losses mse "${peer[@]}" 2>&1 | tee "$out/bench.md"

# Training: Ctrl-C (SIGINT) ends a run after its step with the best weights exported, so each
# stage gets a share of the time left; short epochs keep the exports frequent.
train() { # NAME SECONDS ARGS...
  local name=$1 secs=$2; shift 2
  timeout -s INT "$secs" "$trainer" --backend "$backend" --preset "$preset" --data "$data/train" --data "$data/ref" \
    --test subject01 --name "$name" --runs "$out/runs" --export "$out/$name.safetensors" \
    --epochs 1000 --steps 25 --block 32 --batch 4 "$@" 2>&1 | tee "$out/$name.log" | grep -E "epoch|val" || true
}
eval_secs=$(( $(left) / 6 ))
log "$preset, MSE"
train $preset-mse-slicesx2 $(( ($(left) - eval_secs) * 3 / 4 )) --loss mse --lr 5e-4
log "$preset, MSE + perceptual, from the MSE weights"
if [[ -f "$out/$preset-mse-slicesx2.safetensors" ]]; then
  train $preset-perceptual-slicesx2 $(( $(left) - eval_secs )) --loss perceptual --lr 2e-4 \
    --init "$out/$preset-mse-slicesx2.safetensors"
fi
log "evaluation on the held-out knee (subject01, both echoes' session)"
weights=(--weights www/weights/fast-mse-slicesx2.safetensors)
for w in "$out"/$preset-*.safetensors; do [[ -f "$w" ]] && weights+=(--weights "$w"); done
timeout $(( $(left) > 30 ? $(left) : 30 )) "$trainer" eval "${weights[@]}" --crop 160 --backend "$backend" \
  --data "$data/train/subject01_knee_dess-echo2.nii.gz" --out "$out/eval" 2>&1 | tee "$out/eval.log" | tail -12
log "done: $out"
