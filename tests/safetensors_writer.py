"""The safetensors format written by hand for the fixture scripts (Debian's
python3 has torch but no safetensors module): an 8-byte little-endian header
length, a JSON header padded with spaces to 8 bytes, the raw tensors."""
import json
import struct

import torch

_DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, tensors, meta=None):
    """tensors: name -> torch tensor (floating ones stored as F32, int64 as
    I64), in the order given; meta: the optional __metadata__ dict of strings."""
    header, blobs, offset = ({"__metadata__": meta} if meta is not None else {}), [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
