#!/usr/bin/env python3
"""Read tensor files with the Python reference libraries and print what they found, one JSON per line.

    interop_read.py FILE...

For each FILE (.safetensors via the `safetensors` package, .npz/.npy via `numpy.load`) prints
    {"file": FILE, "metadata": {...} | null,
     "tensors": {name: {"dtype": "float32", "shape": [..], "sha256": ".."}}}
where sha256 is of the values in row-major order converted to little-endian float32 bytes (integer
and bool tensors: little-endian int64 bytes), so a Swift reader can prove it sees identical values
whatever the stored dtype, byte order or memory order. A .npy holds one tensor, named after the
file without its extension. dtype names are numpy's ("float32", "float16", "bfloat16", "int64"...).
Any read failure prints "interop_read.py: FILE: reason" to stderr; the exit status is then 1.
"""
import hashlib
import json
import os
import sys

import numpy as np
import safetensors
from safetensors import safe_open


def values_sha256(values):
    if values.dtype.kind == "f":
        data = np.ascontiguousarray(values, dtype="<f4")
    elif values.dtype.kind in "iub":
        data = np.ascontiguousarray(values, dtype="<i8")
    else:
        raise ValueError(f"dtype {values.dtype}: expected a float, integer or bool tensor")
    return hashlib.sha256(data.tobytes()).hexdigest()


def describe(name, values, dtype=None):
    return name, {"dtype": dtype or values.dtype.name, "shape": list(values.shape),
                  "sha256": values_sha256(values)}


def bf16_tensors(path):
    """numpy has no bfloat16, so safe_open cannot return these; take the bytes the library's own
    parser (safetensors.deserialize) yields and widen them: bf16 is the top half of an f32."""
    with open(path, "rb") as f:
        data = f.read()
    found = {}
    for name, tensor in safetensors.deserialize(data):
        if tensor["dtype"] == "BF16":
            bits = np.frombuffer(bytes(tensor["data"]), dtype="<u2").astype(np.uint32) << 16
            found[name] = bits.view(np.float32).reshape(tensor["shape"])
    return found


def read_safetensors(path):
    tensors = {}
    with safe_open(path, framework="np") as f:
        metadata = f.metadata()
        names = list(f.keys())
        dtypes = {name: f.get_slice(name).get_dtype() for name in names}
        for name in names:
            if dtypes[name] != "BF16":
                tensors[name] = describe(name, f.get_tensor(name))[1]
    if "BF16" in dtypes.values():
        for name, values in bf16_tensors(path).items():
            tensors[name] = describe(name, values, "bfloat16")[1]
    return tensors, metadata


def read_numpy(path):
    if path.endswith(".npy"):
        values = np.load(path, allow_pickle=False)
        return dict([describe(os.path.basename(path)[:-len(".npy")], values)]), None
    with np.load(path, allow_pickle=False) as archive:
        return dict(describe(name, archive[name]) for name in archive.files), None


def read(path):
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    if path.endswith((".npz", ".npy")):
        return read_numpy(path)
    raise ValueError("expected a .safetensors, .npz or .npy file")


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            tensors, metadata = read(path)
        except Exception as error:  # any library failure is the answer we report, whatever its type
            print(f"interop_read.py: {path}: {type(error).__name__}: {error}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps({"file": path, "tensors": tensors, "metadata": metadata}, sort_keys=True))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
