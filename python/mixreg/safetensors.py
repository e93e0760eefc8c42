"""A bounded safetensors reader in pure Python (NumPy arrays), shared by
mixreg.run and mixreg.torch. A checkpoint may come from anywhere, so the file
is checked by the rules mixreg's own reader applies (docs/formats.md, "What
the reader checks") before any array is made from it: framing, keys, dtypes,
shapes, offsets covering the data area exactly once."""
import json
import os
import struct

import numpy as np

from ._library import MixregError

MAX_FILE = 16 << 30
MAX_HEADER = 16 << 20
MAX_DIMS = 8
MAX_NAME = 127
MAX_INT = 1 << 53
DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1", "U32": "<u4"}


class FormatError(MixregError, ValueError):
    """A file mixreg reads is corrupt, truncated or inconsistent."""


FormatError.__module__ = "mixreg"


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _integer(value):
    return type(value) is int and 0 <= value <= MAX_INT


def _check_entry(name, info):
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"tensor {name!r}: expected exactly dtype, shape and data_offsets")
    if not 1 <= len(name.encode("utf-8")) <= MAX_NAME:
        raise FormatError(f"tensor name of {len(name.encode('utf-8'))} bytes (1 to {MAX_NAME})")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPES:
        raise FormatError(f"tensor {name!r}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_integer(d) for d in shape):
        raise FormatError(f"tensor {name!r}: shape {shape!r} is not a list of at most {MAX_DIMS} sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_integer(o) for o in offsets):
        raise FormatError(f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end]")
    begin, end = offsets
    size = np.dtype(DTYPES[dtype]).itemsize
    for d in shape:
        size *= d  # Python integers: no overflow
    if begin > end or end - begin != size:
        raise FormatError(f"tensor {name!r}: data_offsets {offsets} do not hold {size} bytes of {dtype} {shape}")
    return np.dtype(DTYPES[dtype]), tuple(shape), begin, end


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file: a dict of NumPy arrays by
    name, in file order, and the __metadata__ strings. Raises FormatError
    (a ValueError) naming the file for anything mixreg's reader refuses."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE:
            raise FormatError(f"{size} bytes, more than the {MAX_FILE} a checkpoint may have")
        # The size is checked first and only that much read: read(n) would
        # reserve n bytes up front, whatever the file holds.
        with open(path, "rb") as f:
            data = bytearray(f.read(min(size, MAX_FILE) + 1))
        if len(data) > MAX_FILE:
            raise FormatError(f"more than the {MAX_FILE} bytes a checkpoint may have")
        return _parse(data)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None


def _parse(data):
    if len(data) < 8:
        raise FormatError("too short for a safetensors file")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > MAX_HEADER or n > len(data) - 8:
        raise FormatError(f"header length {n} is beyond the file or over {MAX_HEADER}")
    raw = bytes(data[8:8 + n])
    if b"\0" in raw:
        raise FormatError("NUL byte in the header")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except FormatError:
        raise
    except (ValueError, RecursionError) as e:
        raise FormatError(f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ is not an object of strings")
    if any("\0" in k or "\0" in v for k, v in meta.items()) or any("\0" in k for k in header):
        raise FormatError("\\u0000 in the header")
    body = memoryview(data)[8 + n:]
    entries = [(name, _check_entry(name, info)) for name, info in header.items()]
    covered = 0
    for _, (_, _, begin, end) in sorted(entries, key=lambda e: (e[1][2], e[1][3])):
        if begin != covered:
            raise FormatError(f"the tensors {'overlap' if begin < covered else 'leave a hole'} at data byte {begin}")
        covered = end
    if covered != len(body):
        raise FormatError(f"the tensors cover {covered} of the {len(body)} data bytes")
    tensors = {}
    for name, (dtype, shape, begin, end) in entries:
        count = (end - begin) // dtype.itemsize
        tensors[name] = np.frombuffer(body, dtype=dtype, count=count, offset=begin).reshape(shape)
    return tensors, meta
