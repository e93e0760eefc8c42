#!/usr/bin/env bash
# Regenerates the committed fuzzing seeds (tests/fuzz/seeds/<target>/) from
# real files: tiny MLP and resnet20 runs trained by the mixreg binary given
# (default build/mixreg) on a tiny IDX set. Run from anywhere; commit the result.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(realpath "${1:-build/mixreg}")
SEEDS=tests/fuzz/seeds
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 tests/make_tiny_idx.py "$WORK/data" 6 24 8 1
for model in mlp resnet20; do  # relative paths, so the stored configs name no temporary directory
    (cd "$WORK" && "$BIN" train --data idx:data --model "$model" --hidden 4 --epochs 2 --batch-size 8 --max-steps 4 \
        --log-every 1 --val-split 0.25 --threads 1 --no-tensorboard --out "$model" > /dev/null 2>&1)
done
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{fuzz_safetensors,fuzz_checkpoint,fuzz_config_json,fuzz_run_files}
# The MLP checkpoint is small enough whole; the resnet20 one (1 MB) keeps its
# header's metadata and its smallest tensors.
cp "$WORK/mlp/model.safetensors" "$SEEDS/fuzz_safetensors/mlp-run.safetensors"
python3 tests/fuzz/shrink_safetensors.py "$WORK/resnet20/model.safetensors" "$SEEDS/fuzz_safetensors/resnet20-run-part.safetensors"
# Each also in text form (tests/fuzz/st_framing.h), where edits inside the header keep its framing.
python3 tests/fuzz/shrink_safetensors.py --text "$WORK/mlp/model.safetensors" "$SEEDS/fuzz_safetensors/mlp-run.text" 1000000
python3 tests/fuzz/shrink_safetensors.py --text "$WORK/resnet20/model.safetensors" "$SEEDS/fuzz_safetensors/resnet20-run-part.text"
cp "$WORK/mlp/model.safetensors" "$SEEDS/fuzz_checkpoint/mlp-run.safetensors"
cp "$SEEDS/fuzz_safetensors/mlp-run.text" "$SEEDS/fuzz_checkpoint/"
# (loads as far as the first missing tensor: the stored model, config and normalisation)
cp "$SEEDS/fuzz_safetensors/resnet20-run-part.safetensors" "$SEEDS/fuzz_checkpoint/"
for model in mlp resnet20; do
    cp "$WORK/$model/config.json" "$SEEDS/fuzz_config_json/$model-config.json"
    # fuzz_run_files: the first byte is the step to trim the log at.
    { printf '\x02'; cat "$WORK/$model/log.jsonl"; } > "$SEEDS/fuzz_run_files/$model-log.jsonl"
    { printf '\x00'; cat "$WORK/$model/result.json"; } > "$SEEDS/fuzz_run_files/$model-result.json"
    { printf '\x00'; cat "$WORK/$model/config.json"; } > "$SEEDS/fuzz_run_files/$model-config.json"
done
ls -l "$SEEDS"/*
