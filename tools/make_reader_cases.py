#!/usr/bin/env python3
"""Write the reader cases: small .npy / .npz / .safetensors files, each with what the reference readers
themselves do with it, for Tests/HDFormatsTests/ReaderCaseTests.swift to replay against ours.

    .venv/bin/python tools/make_reader_cases.py [OUT_DIR]      (default: <repo>/fixtures/reader-cases)
    (the python of `bash tools/venv.sh`: numpy and safetensors at the versions it pins)

Two families of cases:

* "roundtrip": every float layout our readers accept, with values that are NOT exact in f32 (random
  f64, ties, subnormals, values past f32's range): F64/F16/F32, little- and big-endian, C and Fortran
  order, in .npy (v1, v2, v3), .npz stored (np.savez) and deflated (np.savez_compressed), and
  safetensors F64/F16/BF16/F32 (aligned and not). The expected f32 values are numpy's own
  `astype(float32)` (round to nearest even) of numpy's reading of the file, and for f64 sources the
  largest relative change max |f32 - f64| / |f64| over the finite nonzero values, computed here in f64.
* "upstream": the malformed and edge inputs that numpy's own format tests
  (numpy/lib/tests/test_format.py: bad magic, bad versions, bad headers, truncated files, huge headers,
  non-weight dtypes, pickled objects, padded structured dtypes, empty npz) and the safetensors reference
  implementation's tests (safetensors/src/tensor.rs: empty shapes, zero-sized tensors, the JSON offset
  attack, incomplete buffers, too-large and too-small headers, non-UTF-8 and non-JSON headers, padded
  headers, invalid info, overflowing shapes) throw at their readers, plus the policies our reader
  documents as stricter (duplicate keys, unknown entry fields, holes, trailing data).

Each case's reference behaviour is recorded by running the real libraries on the bytes:
  npy / npz:    numpy.load(BytesIO(bytes), allow_pickle=False), every member read (z[k] for k in z.files)
  safetensors:  safetensors.deserialize(bytes) (the Rust parser), metadata through safe_open
manifest.json lists per case: file, format, family, origin (the upstream test it replays), what,
reference (accepts, error, tensors: name -> dtype, shape, f32 bit patterns as hex or int64 values,
f64_narrowing as float.hex). The Swift test never accepts what the reference refuses, never loads other
values, and lists every case it refuses although the reference accepts (docs/FORMATS.md says why).

Values are seeded, so a rerun writes the same manifest (except which of several bad tensors a safetensors
error names: its header is a hash map); the .npz files embed the time they were written
(zipfile), so their bytes change. After regenerating, rewrite fixtures/MANIFEST:
    .venv/bin/python tools/make_fixtures.py --manifest-only
"""
import io
import json
import os
import struct
import sys
import tempfile
import zipfile

import numpy as np
import safetensors
from safetensors import deserialize, safe_open

cases = []


# ----------------------------------------------------------------------------- reference readers

def describe(arr):
    """What a reader must load for this array: f32 bits (C order) for floats, int64 for integers."""
    arr = np.asarray(arr)
    out = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if arr.dtype.fields is not None or kind not in "fiu":
        out["weight_type"] = False
        return out
    out["weight_type"] = (kind == "f" and size in (2, 4, 8)) or (kind == "i" and size in (4, 8))
    if kind == "f":
        c = np.ascontiguousarray(arr)
        f32 = c.astype("<f4")
        out["f32"] = [format(int(b), "08x") for b in f32.view("<u4").ravel()]
        if size == 8:
            wide = c.astype("<f8").ravel()
            narrow = f32.astype("<f8").ravel()
            ok = np.isfinite(wide) & (wide != 0)
            with np.errstate(over="ignore", invalid="ignore"):
                change = np.abs(narrow[ok] - wide[ok]) / np.abs(wide[ok])
            out["f64_narrowing"] = float(change.max()).hex() if change.size else float(0).hex()
    else:
        out["int64"] = [int(v) for v in np.ascontiguousarray(arr).ravel()]
    return out


def error_text(e):
    return f"{type(e).__name__}: {e}"[:300]


def numpy_npy(data):
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # noqa: BLE001 -- any refusal is a refusal
        return {"accepts": False, "error": error_text(e)}
    if not isinstance(arr, np.ndarray):
        return {"accepts": False, "error": f"np.load returned {type(arr).__name__}, not an array"}
    return {"accepts": True, "tensors": {"": describe(arr)}}


def numpy_npz(data):
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            tensors = {}
            for k in z.files:
                v = z[k]
                if isinstance(v, np.ndarray):
                    tensors[k] = describe(v)
                else:
                    tensors[k] = {"dtype": "raw bytes", "shape": [len(v)], "weight_type": False}
    except Exception as e:  # noqa: BLE001
        return {"accepts": False, "error": error_text(e)}
    return {"accepts": True, "tensors": tensors}


ST_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
            "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}


def reference_safetensors(data):
    try:
        parsed = deserialize(data)
    except Exception as e:  # noqa: BLE001
        return {"accepts": False, "error": error_text(e)}
    tensors = {}
    for name, info in parsed:
        dtype, shape, raw = info["dtype"], list(info["shape"]), bytes(info["data"])
        if dtype == "BF16":
            bits = np.frombuffer(raw, "<u2").astype("<u4") << 16
            arr = bits.view("<f4").reshape(shape)
            d = describe(arr)
            d["dtype"] = "BF16"
        elif dtype in ST_NUMPY:
            arr = np.frombuffer(raw, ST_NUMPY[dtype]).reshape(shape)
            d = describe(arr)
            d["dtype"] = dtype
        else:
            d = {"dtype": dtype, "shape": shape, "weight_type": False}
        d["weight_type"] = d["weight_type"] and dtype in ("F64", "F32", "F16", "BF16", "I64", "I32")
        tensors[name] = d
    metadata = None
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            with safe_open(tmp.name, framework="numpy") as f:
                metadata = f.metadata()
        except Exception as e:  # noqa: BLE001
            return {"accepts": False, "error": "safe_open: " + error_text(e)}
    return {"accepts": True, "tensors": tensors, "metadata": metadata or {}}


READERS = {"npy": numpy_npy, "npz": numpy_npz, "safetensors": reference_safetensors}


def add(name, fmt, data, family, origin, what):
    cases.append({"name": name, "file": f"{name}.{fmt}", "format": fmt, "family": family,
                  "origin": origin, "what": what, "bytes": data})


# ----------------------------------------------------------------------------- byte builders

def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def npy_raw(header_text, data=b"", version=(1, 0), pad_to=64):
    """A .npy with a hand-written header dict (padded with spaces, ending in a newline)."""
    h = header_text.encode("latin1")
    length_size = 2 if version[0] == 1 else 4
    prefix = 6 + 2 + length_size
    total = prefix + len(h) + 1
    padded = h + b" " * ((-total) % pad_to) + b"\n"
    length = struct.pack("<H" if length_size == 2 else "<I", len(padded))
    return b"\x93NUMPY" + bytes(version) + length + padded + data


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def savez(compressed=False, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def st_raw(header, data=b"", length=None):
    h = header.encode("utf8") if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def st_tensors(entries, pad=True, metadata=None):
    """safetensors bytes for [(name, dtype, shape, raw bytes)], offsets in the given order."""
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((-(8 + len(text))) % 8)
    return st_raw(text, data)


# ----------------------------------------------------------------------------- values

rng = np.random.default_rng(20261206)


def awkward_f64(shape):
    """f64 values almost none of which are exact in f32: random normals at several scales, f32 ties
    (1 + 2^-24 rounds to 1, 1 + 3*2^-24 to 1 + 2^-22), values in f32's subnormal range, ±0, and a
    value f32 rounds to its largest finite magnitude."""
    n = int(np.prod(shape))
    v = rng.standard_normal(n) * np.logspace(-3, 3, n)
    special = [1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, 1e-40, -3e-44, 0.0, -0.0, 3.4028235e38, 0.6369616873214543]
    v[: min(n, len(special))] = special[: min(n, len(special))]
    return v.reshape(shape)


def awkward_f32(shape):
    return awkward_f64(shape).astype("<f4")


def awkward_f16(shape):
    return (rng.standard_normal(int(np.prod(shape))) * 100).astype("<f2").reshape(shape)


# ----------------------------------------------------------------------------- roundtrip family

def roundtrip_cases():
    a = awkward_f64((3, 5))
    add("rt_npy_f8_le", "npy", npy_bytes(a.astype("<f8")), "roundtrip", "", "<f8, C order")
    add("rt_npy_f8_be", "npy", npy_bytes(a.astype(">f8")), "roundtrip", "", ">f8 (big-endian), C order")
    add("rt_npy_f8_fortran", "npy", npy_bytes(np.asfortranarray(a.astype("<f8"))), "roundtrip", "", "<f8, fortran_order True")
    add("rt_npy_f8_be_fortran", "npy", npy_bytes(np.asfortranarray(a.astype(">f8"))), "roundtrip", "", ">f8, fortran_order True")
    b = awkward_f64((2, 3, 4))
    add("rt_npy_f8_fortran_3d", "npy", npy_bytes(np.asfortranarray(b)), "roundtrip", "", "<f8 (2, 3, 4), fortran_order True")
    add("rt_npy_f8_v2", "npy", npy_bytes(a, version=(2, 0)), "roundtrip", "", "<f8, version 2.0 header")
    add("rt_npy_f8_v3", "npy", npy_bytes(a, version=(3, 0)), "roundtrip", "", "<f8, version 3.0 header")
    add("rt_npy_f8_scalar", "npy", npy_bytes(np.array(0.1)), "roundtrip", "", "0-d <f8")
    add("rt_npy_f8_empty", "npy", npy_bytes(np.zeros((0, 3))), "roundtrip", "", "empty (0, 3) <f8")
    add("rt_npy_f8_overflow", "npy", npy_bytes(np.array([1.0, 1e39, -1e300])), "roundtrip", "",
        "<f8 values beyond f32's range (become ±inf as f32)")
    h = awkward_f16((4, 3))
    add("rt_npy_f2_le", "npy", npy_bytes(h), "roundtrip", "", "<f2")
    add("rt_npy_f2_be_fortran", "npy", npy_bytes(np.asfortranarray(h.astype(">f2"))), "roundtrip", "", ">f2, fortran_order True")
    f = awkward_f32((3, 5))
    add("rt_npy_f4_be_fortran", "npy", npy_bytes(np.asfortranarray(f.astype(">f4"))), "roundtrip", "", ">f4, fortran_order True")
    members = dict(f64=a, f64_be=a.astype(">f8"), f64_fortran=np.asfortranarray(b), f16=h,
                   f16_be=h.astype(">f2"), f32_fortran_be=np.asfortranarray(f.astype(">f4")))
    add("rt_npz_stored", "npz", savez(False, **members), "roundtrip", "", "np.savez of f8, >f8, Fortran f8, f2, >f2, Fortran >f4")
    add("rt_npz_deflated", "npz", savez(True, **members), "roundtrip", "", "np.savez_compressed of the same")
    big = rng.random((200, 200))
    add("rt_npz_deflated_rand", "npz", savez(True, arr=big[:20, :20]), "roundtrip", "numpy test_compressed_roundtrip (rand, cut to 20x20)",
        "np.savez_compressed of rand(20, 20) f64")
    e = awkward_f64((2, 5))
    f32 = awkward_f32((3,))
    bf16_bits = (np.frombuffer(awkward_f32((6,)).tobytes(), "<u4") >> 16).astype("<u2")
    add("rt_st_all_floats", "safetensors",
        st_tensors([("f64", "F64", e.shape, e.astype("<f8").tobytes()),
                    ("f16", "F16", h.shape, h.tobytes()),
                    ("bf16", "BF16", (2, 3), bf16_bits.tobytes()),
                    ("f32", "F32", f32.shape, f32.tobytes())]),
        "roundtrip", "", "F64, F16, BF16, F32 in one file, header padded to 8")
    add("rt_st_f64_unaligned", "safetensors",
        st_tensors([("w", "F64", e.shape, e.astype("<f8").tobytes())], pad=False),
        "roundtrip", "safetensors test_serialization (unpadded header)", "F64 data at an odd file offset")
    add("rt_st_f32_unaligned", "safetensors",
        st_tensors([("odd", "F32", f32.shape, f32.tobytes())], pad=False),
        "roundtrip", "safetensors test_serialization (unpadded header)", "F32 data at an unaligned offset")


# ----------------------------------------------------------------------------- upstream family

NF = "numpy test_format.py"
ST = "safetensors tensor.rs"


def numpy_cases():
    basic = np.arange(15)
    for magic, label in [(b"\x92NUMPY\x01\x00", "x92"), (b"\x00NUMPY\x01\x00", "x00"), (b"\x93numpy\x01\x00", "lower"),
                         (b"\x93MATLB\x01\x00", "matlb"), (b"\x93NUMPY\x01", "short1"), (b"\x93NUMPY", "short0")]:
        add(f"np_malformed_magic_{label}", "npy", magic, "upstream", f"{NF} malformed_magic / test_read_magic_bad_magic", f"magic {magic!r} alone")
    for magic, label in [(b"\x93NUMPY\x01\x01", "1_1"), (b"\x93NUMPY\x00\x00", "0_0"), (b"\x93NUMPY\x00\x01", "0_1"),
                         (b"\x93NUMPY\x02\x02", "2_2"), (b"\x93NUMPY\xff\xff", "255_255")]:
        add(f"np_bad_version_{label}", "npy", magic + b"\x46\x00" + b"{'descr': '<f8', 'fortran_order': False, 'shape': (15,), }" + b" " * 11 + b"\n"
            + basic.astype("<f8").tobytes(), "upstream", f"{NF} bad_version_magic / test_read_version_1_0_bad_magic",
            f"version {label.replace('_', '.')} with an otherwise valid header and data")
    good = npy_bytes(basic.astype("<f8").reshape(3, 5))
    add("np_truncated_data", "npy", good[:-1], "upstream", f"{NF} test_roundtrip_truncated / test_file_truncated", "one data byte missing")
    add("np_truncated_empty_header", "npy", npy_bytes(np.zeros(0))[:-1], "upstream", f"{NF} test_file_truncated (size 0)", "empty array, header cut by one byte")
    add("np_header_len_lt_2", "npy", b"\x93NUMPY\x01\x00" + b"1", "upstream", f"{NF} test_bad_header", "header length field cut off")
    add("np_header_shorter_than_declared", "npy", b"\x93NUMPY\x01\x00\x01\x00", "upstream", f"{NF} test_bad_header", "declares a 1-byte header, has none")
    add("np_header_missing_fortran_order", "npy", b"\x93NUMPY\x01\x006\x00{'descr': 'x', 'shape': (1, 2), }" + b" " * 20 + b"\n",
        "upstream", f"{NF} test_bad_header", "header without fortran_order")
    add("np_header_extra_key", "npy", npy_raw("{'descr': '<f8', 'extrakey': -1, 'fortran_order': False, 'shape': (1, 2), }", b"\0" * 16),
        "upstream", f"{NF} test_bad_header", "header with an extra key")
    add("np_header_missing_key_valid_descr", "npy", npy_raw("{'descr': '<f8', 'shape': (2,), }", b"\0" * 16),
        "upstream", f"{NF} test_bad_header", "valid descr and shape, no fortran_order")
    add("np_header_no_newline", "npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".ljust(118, b" ")
        + b"\0" * 16, "upstream", "numpy format spec (header terminated by a newline)", "header padded with spaces but no final newline")
    add("np_shape_negative", "npy", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }"), "upstream", f"{NF} (shape validation)", "shape (-1,)")
    add("np_shape_list", "npy", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': [2], }", b"\0" * 16), "upstream", f"{NF} (shape must be a tuple)", "shape as a list [2]")
    add("np_fortran_order_int", "npy", npy_raw("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,), }", b"\0" * 16), "upstream", f"{NF} (fortran_order must be a bool)", "fortran_order 0")
    add("np_descr_name", "npy", npy_raw("{'descr': 'float64', 'fortran_order': False, 'shape': (2,), }", np.array([0.1, 0.2]).tobytes()),
        "upstream", f"{NF} test_descr_to_dtype", "descr 'float64' (a dtype name, not a typestr)")
    add("np_descr_no_byteorder", "npy", npy_raw("{'descr': 'f8', 'fortran_order': False, 'shape': (2,), }", np.array([0.1, 0.2]).tobytes()),
        "upstream", f"{NF} test_descr_to_dtype", "descr 'f8' (native byte order)")
    add("np_trailing_bytes", "npy", good + b"\0" * 8, "upstream", "numpy np.load (reads count items, ignores the rest)", "8 bytes after the data")
    add("np_huge_header", "npy", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }" + " " * 12000, np.array([0.1, 0.2]).tobytes(), version=(2, 0)),
        "upstream", f"{NF} test_huge_header (max_header_size 10000)", "a plain <f8 header padded past 10000 bytes")
    add("np_object_array", "npy", npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."), "upstream",
        f"{NF} test_pickle_disallow", "object array (pickled data), allow_pickle False")
    for dt in ["|u1", "<i2", "<u4", "<u8", ">i4", "<c8", "<c16", "|b1", "<U3", "|S2", "<M8[s]"]:
        add(f"np_dtype_{dt.replace('<', 'le_').replace('>', 'be_').replace('|', '').replace('[', '_').replace(']', '')}", "npy",
            npy_bytes(np.arange(6).astype(dt).reshape(2, 3)), "upstream", f"{NF} basic_arrays / test_roundtrip", f"dtype {dt}")
    add("np_i8_be", "npy", npy_bytes(np.arange(-3, 3).astype(">i8")), "upstream", f"{NF} basic_arrays", ">i8")
    add("np_i4_fortran", "npy", npy_bytes(np.asfortranarray(np.arange(15).astype("<i4").reshape(3, 5))), "upstream", f"{NF} basic_arrays (.T)", "<i4 fortran order")
    add("np_strided_view", "npy", npy_bytes(basic.astype("<f8").reshape(3, 5)[::-1, ::2]), "upstream", f"{NF} basic_arrays ([::-1, ::2])", "a strided view, written as C order")
    add("np_record", "npy", npy_bytes(np.array([([3, 2], [[6., 4.], [6., 4.]], 8)], dtype=[('x', 'i4', (2,)), ('y', 'f8', (2, 2)), ('z', 'u1')])),
        "upstream", f"{NF} record_arrays (Pdescr)", "structured dtype")
    add("np_padded_dtype", "npz", savez(False, arr=np.zeros(3, np.dtype({'names': ['a', 'b'], 'formats': ['i4', 'i4'], 'offsets': [1, 6]}))),
        "upstream", f"{NF} test_load_padded_dtype", "npz holding a structured dtype with explicit offsets")
    add("np_empty_npz", "npz", savez(False), "upstream", f"{NF} test_empty_npz", "np.savez() with no arrays")
    add("np_npz_object_member", "npz", zip_bytes([("x.npy", npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."))]),
        "upstream", f"{NF} test_pickle_disallow (npz)", "npz member holding an object array")
    add("np_npz_not_npy_member", "npz", zip_bytes([("w.npy", npy_bytes(np.ones(2))), ("README.txt", b"hello")]),
        "upstream", "numpy NpzFile (non-.npy members come back as bytes)", "npz with a README.txt member")
    z = bytearray(savez(False, w=np.arange(4.0)))
    z[z.find(b"\x93NUMPY") + 80] ^= 0x01
    add("np_npz_crc_mismatch", "npz", bytes(z), "upstream", "zipfile (CRC-32 checked on read)", "one data byte flipped in a stored member")
    add("np_npz_truncated", "npz", savez(False, w=np.arange(4.0))[:-30], "upstream", "zipfile (end of central directory)", "archive cut short")
    add("np_npz_huge_header", "npz", zip_bytes([("w.npy", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }" + " " * 12000,
                                                              np.array([0.1, 0.2]).tobytes(), version=(2, 0)))]),
        "upstream", f"{NF} test_huge_header_npz", "npz member with a header padded past 10000 bytes")


def safetensors_cases():
    z16 = b"\0" * 16
    add("st_empty_shape", "safetensors", b"8\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}\x00\x00\x00\x00",
        "upstream", f"{ST} test_empty_shapes_allowed", "I32 scalar")
    add("st_deserialization", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + z16,
        "upstream", f"{ST} test_deserialization", "I32 [2, 2] zeros")
    attack = {f"weight_{i}": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]} for i in range(10)}
    add("st_json_attack", "safetensors", st_raw(json.dumps(attack), z16), "upstream", f"{ST} test_json_attack", "ten tensors sharing offsets [0, 16]")
    add("st_incomplete_extra", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + z16
        + b"extra_bogus_data_for_polyglot_file", "upstream", f"{ST} test_metadata_incomplete_buffer", "data past the last tensor (polyglot file)")
    add("st_incomplete_missing", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + z16[:14],
        "upstream", f"{ST} test_metadata_incomplete_buffer", "two data bytes missing")
    add("st_header_too_large", "safetensors", b"<\x00\x00\x00\x00\xff\xff\xff{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}" + z16,
        "upstream", f"{ST} test_header_too_large", "header length 0xffffff000000003c")
    add("st_header_too_small", "safetensors", b"", "upstream", f"{ST} test_header_too_small", "empty file")
    add("st_invalid_header_length", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00", "upstream", f"{ST} test_invalid_header_length", "header length 60, nothing after it")
    add("st_non_utf8", "safetensors", b"\x01\x00\x00\x00\x00\x00\x00\x00\xff", "upstream", f"{ST} test_invalid_header_non_utf8", "header byte 0xff")
    add("st_not_json", "safetensors", b"\x01\x00\x00\x00\x00\x00\x00\x00{", "upstream", f"{ST} test_invalid_header_not_json", "header '{'")
    add("st_trailing_whitespace", "safetensors", b"\x06\x00\x00\x00\x00\x00\x00\x00{}\x0D\x20\x09\x0A", "upstream", f"{ST} test_whitespace_padded_header",
        "header '{}' followed by CR, space, tab, LF")
    add("st_leading_whitespace", "safetensors", b"\x06\x00\x00\x00\x00\x00\x00\x00\x09\x0A{}\x0D\x20", "upstream",
        f"{ST} test_whitespace_start_padded_header_is_not_allowed (commented out: reserved for 0.4.0)", "header starting with tab, LF")
    one = np.array([0.5, -0.25], "<f4").tobytes()
    add("st_leading_spaces_tensor", "safetensors", st_raw(b"   " + json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode() + b"   ", one),
        "upstream", "safetensors (header padding, issue 17 defect 13)", "a tensor whose header starts and ends with spaces")
    add("st_zero_sized", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}",
        "upstream", f"{ST} test_zero_sized_tensor", "I32 [2, 0], offsets [0, 0], no data")
    add("st_invalid_info", "safetensors", b"<\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}",
        "upstream", f"{ST} test_invalid_info", "[2, 2] I32 declared with 4 bytes")
    add("st_overflow_shape", "safetensors", b"O\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}}" + z16,
        "upstream", f"{ST} test_validation_overflow", "shape product overflows")
    add("st_overflow_bytes", "safetensors", b"N\x00\x00\x00\x00\x00\x00\x00{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}" + z16,
        "upstream", f"{ST} test_validation_overflow", "element count times size overflows")
    data = np.arange(6, dtype="<f4").tobytes()
    add("st_serialization", "safetensors", st_tensors([("attn.0", "F32", (1, 2, 3), data)], pad=False), "upstream", f"{ST} test_serialization", "F32 [1, 2, 3], unpadded")
    add("st_forced_alignment", "safetensors", st_tensors([("attn0", "F32", (1, 1, 2, 3), data)]), "upstream", f"{ST} test_serialization_forced_alignement", "F32, header padded to 8")
    add("st_empty", "safetensors", bytes([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]), "upstream", f"{ST} test_empty", "no tensors")
    add("st_empty_metadata", "safetensors", st_tensors([], metadata={"framework": "pt"}), "upstream", f"{ST} test_empty", "no tensors, metadata framework=pt")
    add("st_duplicate_tensor", "safetensors", st_raw('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', one),
        "upstream", "JSON objects (serde keeps the last duplicate)", "the same tensor name twice")
    add("st_unknown_field", "safetensors", st_raw('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}', one),
        "upstream", "serde (unknown fields ignored)", "an entry with an extra field")
    add("st_hole", "safetensors", st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', b"\0" * 12),
        "upstream", f"{ST} validate_offset", "4 bytes belonging to no tensor between two tensors")
    add("st_metadata_not_string", "safetensors", st_raw('{"__metadata__":{"k":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', one),
        "upstream", "safetensors Metadata (HashMap<String, String>)", "__metadata__ value is a number")
    add("st_shape_float", "safetensors", st_raw('{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', one), "upstream", "serde usize", "shape [2.0]")
    add("st_shape_negative", "safetensors", st_raw('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', one), "upstream", "serde usize", "shape [-2]")
    add("st_dtype_unknown", "safetensors", st_raw('{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,8]}}', one), "upstream", "safetensors Dtype", "dtype F128")
    add("st_dtype_u8", "safetensors", st_raw('{"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}', one), "upstream", "safetensors Dtype", "dtype U8")
    add("st_dtype_bool", "safetensors", st_raw('{"w":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', b"\x01\x00"), "upstream", "safetensors Dtype", "dtype BOOL")
    add("st_offsets_reversed", "safetensors", st_raw('{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', one), "upstream", f"{ST} validate_offset", "data_offsets [8, 0]")
    add("st_out_of_order", "safetensors", st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', one),
        "upstream", f"{ST} validate_offset (sorted by offset)", "tensors listed out of data order")
    add("st_header_array", "safetensors", st_raw("[]"), "upstream", "safetensors header", "header is a JSON array")
    add("st_i64_i32", "safetensors", st_tensors([("ids", "I64", (3,), np.array([0, 1, 2], "<i8").tobytes()),
                                                 ("n", "I32", (2,), np.array([-7, 2**31 - 1], "<i4").tobytes())]),
        "upstream", "position_ids-like integer tensors", "I64 and I32 tensors")


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "fixtures", "reader-cases")
    os.makedirs(out, exist_ok=True)
    roundtrip_cases()
    numpy_cases()
    safetensors_cases()
    manifest = {
        "generator": "tools/make_reader_cases.py",
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "reference": {"npy": "numpy.load(BytesIO(bytes), allow_pickle=False)",
                      "npz": "numpy.load(BytesIO(bytes), allow_pickle=False), every member read",
                      "safetensors": "safetensors.deserialize(bytes); metadata via safe_open(framework='numpy')"},
        "cases": [],
    }
    for c in cases:
        with open(os.path.join(out, c["file"]), "wb") as f:
            f.write(c["bytes"])
        entry = {k: v for k, v in c.items() if k != "bytes"}
        entry["reference"] = READERS[c["format"]](c["bytes"])
        manifest["cases"].append(entry)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    accepted = sum(c["reference"]["accepts"] for c in manifest["cases"])
    print(f"{len(cases)} cases ({accepted} accepted by the reference) in {out}")


if __name__ == "__main__":
    main()
