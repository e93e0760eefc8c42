# mixreg.torch (python/mixreg/torch.py): the PyTorch module from_run builds
# for a run gives mixreg's own predictions, for mlp, lenet5, resnet20 and
# preact18 on 3x32x32 images and resnet50 on 3x64x64 (each trained one step
# on a tiny image folder, so batch-norm running statistics are not the
# initial ones; tests/python_torch_check.py compares). Skipped (77) where
# PyTorch is not importable.
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import torch, torchvision, numpy" 2> /dev/null; then
    echo "skipped: $PY cannot import torch, torchvision and numpy"
    rm -rf "$WORK"
    exit 77
fi

# Two image folders of 3 classes (4 training, 2 validation images each):
# noise with a class colour, stored at the size the evaluation resizes to
# (side * 256 / 224 rounded: 37 for 32, 73 for 64), so that the sample is the
# exact centre crop; the validation images also as valSIZE.npy.
"$PY" - "$WORK" <<'PY' || fail "could not write the image folders"
import os, struct, sys, zlib
import numpy as np

def png(path, img):  # img: H x W x 3 uint8
    rows = b"".join(b"\0" + img[y].tobytes() for y in range(img.shape[0]))
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    head = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

rng = np.random.default_rng(5)
for size, side in ((32, 37), (64, 73)):
    val = []
    for split, count in (("train", 4), ("val", 2)):
        for c, name in enumerate(("ant", "bee", "cow")):
            os.makedirs(f"{sys.argv[1]}/folder{size}/{split}/{name}", exist_ok=True)
            for k in range(count):
                img = rng.integers(0, 120, (side, side, 3), dtype=np.uint8)
                img[:, :, c] += 100
                png(f"{sys.argv[1]}/folder{size}/{split}/{name}/{k}.png", img)
                if split == "val":
                    val.append(img.transpose(2, 0, 1))
    np.save(f"{sys.argv[1]}/val{size}.npy", np.stack(val))
PY

SPECS=(mlp:32 lenet5:32 resnet20:32 preact18:32 resnet50:64)
for spec in "${SPECS[@]}"; do
    arch=${spec%:*} size=${spec#*:}
    "$BIN" train --model "$arch" --data "folder:$WORK/folder$size" --image-size "$size" --max-steps 1 --batch-size 4 \
        --mixup-alpha 1 --no-tensorboard --threads 2 --out "$WORK/$arch" > /dev/null 2> "$WORK/$arch.err" \
        || fail "$arch: training failed: $(cat "$WORK/$arch.err")"
    "$BIN" eval "$WORK/$arch" --rescale off --predictions "$WORK/$arch.npy" --threads 2 > /dev/null 2> "$WORK/$arch.err" \
        || fail "$arch: eval --predictions failed: $(cat "$WORK/$arch.err")"
done
CHECKS=$((CHECKS + 1))
PYTHONPATH="$MIXREG_SOURCE_DIR/python" "$PY" "$MIXREG_SOURCE_DIR/tests/python_torch_check.py" "$WORK" "${SPECS[@]}" \
    || fail "PyTorch's modules disagree with mixreg's"
finish
