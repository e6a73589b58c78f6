#!/usr/bin/env python3
"""Write small .npy/.npz files with numpy itself into fixtures/interop/, for the Swift readers' tests.

    make_npz_interop_fixture.py [OUT_DIR]      (default: <repo>/fixtures/interop)

Every array holds value(i) = i * 0.25 - 1 at row-major (C order) position i, cast to its dtype
(integers: i * 3 - 5), so a test recomputes the expected values from the shape alone, whatever
memory order or byte order the file uses. Files:

  numpy_savez.npz             np.savez: f32 2-D, f64, f16, i8, i4, 0-d, empty (0, 3), a TF-style "a/b" name
  numpy_savez_compressed.npz  np.savez_compressed of the same arrays
  numpy_fortran_f32.npy       (3, 4) f32, fortran_order True
  numpy_fortran_f64_3d.npy    (2, 3, 4) f64, fortran_order True
  numpy_big_endian_f32.npy    (2, 3) >f4
  numpy_big_endian_i8.npy     (5,) >i8
  numpy_v2.npy                (2, 2) f32 with a version 2.0 header
  numpy_v3.npy                (3,) f32 with a version 3.0 header
"""
import os
import sys

import numpy as np


def values(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.float64)
    if np.dtype(dtype).kind == "i":
        return (i * 3 - 5).astype(dtype).reshape(shape)
    return (i * 0.25 - 1).astype(dtype).reshape(shape)


def arrays():
    return {
        "f32": values((3, 4), "<f4"),
        "f64": values((5,), "<f8"),
        "f16": values((2, 3), "<f2"),
        "i64": values((4,), "<i8"),
        "i32": values((2, 2), "<i4"),
        "scalar": values((), "<f4"),
        "empty": values((0, 3), "<f4"),
        "a/b": values((2,), "<f4"),
    }


def write_versioned(path, array, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version)


def main(out):
    os.makedirs(out, exist_ok=True)
    np.savez(os.path.join(out, "numpy_savez.npz"), **arrays())
    np.savez_compressed(os.path.join(out, "numpy_savez_compressed.npz"), **arrays())
    np.save(os.path.join(out, "numpy_fortran_f32.npy"), np.asfortranarray(values((3, 4), "<f4")))
    np.save(os.path.join(out, "numpy_fortran_f64_3d.npy"), np.asfortranarray(values((2, 3, 4), "<f8")))
    np.save(os.path.join(out, "numpy_big_endian_f32.npy"), values((2, 3), ">f4"))
    np.save(os.path.join(out, "numpy_big_endian_i8.npy"), values((5,), ">i8"))
    write_versioned(os.path.join(out, "numpy_v2.npy"), values((2, 2), "<f4"), (2, 0))
    write_versioned(os.path.join(out, "numpy_v3.npy"), values((3,), "<f4"), (3, 0))
    for name in ("numpy_fortran_f32.npy", "numpy_fortran_f64_3d.npy"):
        with open(os.path.join(out, name), "rb") as f:
            assert b"'fortran_order': True" in f.read(128), name
    return 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "interop")))
