#!/usr/bin/env python3
"""Writes fixtures/interop/python_safetensors.safetensors with the reference `safetensors` package,
so the Swift reader is tested against bytes it did not write itself.

Usage: python tools/make_safetensors_interop_fixture.py [output-path]
The values are fixed (no RNG); Tests/HDFormatsTests/SafeTensorsTests.swift hard-codes them.
"""
import os
import sys

import numpy as np
from safetensors.numpy import save_file


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fixtures", "interop", "python_safetensors.safetensors")
    tensors = {
        "a.f32": (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1),
        # 65504 = largest f16, 2**-24 = smallest subnormal, then inf and -0.
        "b.f16": np.array([0, 1, -2, 0.5, 65504, 2.0**-24, np.inf, -0.0], dtype=np.float16),
        "c.f64": np.array([[1.5, -2.25]], dtype=np.float64),
        "d.i64": np.arange(4, dtype=np.int64) - 1,
        "e.i32": np.array([7, -8], dtype=np.int32),
        "f.empty": np.zeros((0, 3), dtype=np.float32),
        "g.scalar": np.array(3.25, dtype=np.float32),
    }
    save_file(tensors, out, metadata={"format": "np", "generator": "tools/make_safetensors_interop_fixture.py"})
    print(out)


if __name__ == "__main__":
    main()
