"""Makes a small fuzzing seed out of a real safetensors file: the same header
metadata and the tensors that fit a byte budget (smallest first, so batch-norm
buffers, 0-dimensional counters and biases stay), with their offsets recomputed.
With --text, DST is in the fuzz targets' text form (tests/fuzz/st_framing.h):
the header JSON, a NUL byte, the tensor data.
usage: shrink_safetensors.py [--text] SRC DST [BUDGET_BYTES]"""
import json
import struct
import sys

args = sys.argv[1:]
text_form = args[0] == "--text"
if text_form:
    args = args[1:]
src, dst = args[0], args[1]
budget = int(args[2]) if len(args) > 2 else 4096
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
meta = header.pop("__metadata__", None)
kept, used = {}, 0
for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0]):
    begin, end = t["data_offsets"]
    if used + end - begin > budget:
        break
    kept[name] = (t, b[8 + n + begin:8 + n + end])
    used += end - begin
out, data = {}, b""
if meta is not None:
    out["__metadata__"] = meta
for name in header:  # the original order
    if name in kept:
        t, raw = kept[name]
        out[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
text = json.dumps(out, separators=(",", ":"))
if text_form:
    open(dst, "wb").write(text.encode() + b"\0" + data)
else:
    text += " " * (-len(text) % 8)
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text.encode() + data)
