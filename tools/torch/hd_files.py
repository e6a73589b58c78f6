"""The files the torch trainer shares with the Swift tools (docs/FORMATS.md), read and written with numpy
only: safetensors (the canonical checkpoint, `student.ckpt`) and the token file (`corpus.tokens`).

The writer produces the bytes the Swift writer does: names in byte order, `__metadata__` first with
sorted keys, entry keys sorted, header padded with spaces to a multiple of 8; written to a temporary file
in the destination's directory, fsynced, re-read and compared, renamed over the destination.
"""
import hashlib
import json
import os
import struct
import tempfile

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8")}
NAMES = {v: k for k, v in DTYPES.items()}


class FileError(Exception):
    """A file that is not what it should be: the message names the file and the tensor or key."""


def read_safetensors(path, mmap=True):
    """(tensors, metadata) of a safetensors file; tensors are numpy arrays (memory-mapped when `mmap`)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FileError(f"{path}: expected a safetensors file, found {size} bytes")
        n = struct.unpack("<Q", head)[0]
        if n > min(size - 8, 16 << 20):
            raise FileError(f"{path}: safetensors header of {n} bytes does not fit the file ({size} bytes)")
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    whole = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, dtype=np.uint8)
    for name, e in header.items():
        dtype = DTYPES.get(e["dtype"])
        if dtype is None:
            raise FileError(f"{path}: tensor {name}: dtype {e['dtype']} is not one the project writes")
        begin, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if end - begin != count * dtype.itemsize or base + end > size:
            raise FileError(f"{path}: tensor {name}: offsets {begin}…{end} do not hold shape {e['shape']} of {e['dtype']}")
        tensors[name] = whole[base + begin:base + end].view(dtype).reshape(e["shape"])
    return tensors, meta


def serialize_header(tensors, meta):
    names = sorted(tensors, key=lambda s: s.encode())
    parts, offset = [], 0
    if meta:
        keys = sorted(meta, key=lambda s: s.encode())
        parts.append('"__metadata__":{' + ",".join(json.dumps(k) + ":" + json.dumps(meta[k]) for k in keys) + "}")
    for name in names:
        a = tensors[name]
        end = offset + a.nbytes
        parts.append(json.dumps(name) + ':{"data_offsets":[%d,%d],"dtype":"%s","shape":[%s]}'
                     % (offset, end, NAMES[a.dtype], ",".join(str(d) for d in a.shape)))
        offset = end
    text = ("{" + ",".join(parts) + "}").encode()
    text += b" " * (-len(text) % 8)
    return names, struct.pack("<Q", len(text)) + text


def write_safetensors(path, tensors, meta):
    """Atomic, deterministic write of numpy arrays (f32, i32, i64, little-endian) and string metadata."""
    tensors = {k: np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("<")) for k, v in tensors.items()}
    names, header = serialize_header(tensors, meta)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for name in names:
                f.write(tensors[name].tobytes())
            f.flush()
            os.fsync(f.fileno())
        back, back_meta = read_safetensors(temp, mmap=False)
        if back_meta != meta or set(back) != set(tensors) or any(
                back[k].shape != tensors[k].shape or back[k].tobytes() != tensors[k].tobytes() for k in tensors):
            raise FileError(f"{path}: written file did not read back as written; the destination was left untouched")
        os.replace(temp, path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def vocab_sha256(tokens):
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()


class TokenFile:
    """`corpus.tokens` (docs/FORMATS.md "Token file"), checked as `TokenFile.read` checks it, ids memory-mapped.

    Sequence i of a split is [CLS] + ids[i·(L−2) : (i+1)·(L−2)] + [SEP], every token real."""

    def __init__(self, path, vocab, lowercase, seq_len):
        tensors, meta = read_safetensors(path)
        if meta.get("hd.kind") != "tokens" or meta.get("hd.format") != "1":
            raise FileError(f"{path}: expected a token file (hd.kind \"tokens\", hd.format \"1\"), found "
                            f"hd.kind {meta.get('hd.kind')!r}")
        size = int(meta["hd.tokens.vocab_size"])
        if size != len(vocab) or meta["hd.tokens.vocab_sha256"] != vocab_sha256(vocab):
            raise FileError(f"{path}: hd.tokens.vocab_sha256: tokenised with another vocabulary than the teacher's; "
                            "tokenise again with this teacher (hd-distill TEACHER --tokenize-only)")
        if (meta["hd.do_lower_case"] == "true") != lowercase:
            raise FileError(f"{path}: hd.do_lower_case: the token file's casing differs from the teacher's")
        self.special = json.loads(meta["hd.tokens.special"])
        self.held_out_every = int(meta["hd.tokens.held_out_every"])
        self.path, self.seq_len, self.vocab_size = path, seq_len, size
        self.streams = {}
        for split in ("train", "held_out"):
            ids, offsets = tensors.get(split + ".ids"), tensors.get(split + ".paragraph_offsets")
            if ids is None or offsets is None or ids.dtype != np.int32 or offsets.dtype != np.int64 or ids.ndim != 1:
                raise FileError(f"{path}: expected {split}.ids (I32, 1-D) and {split}.paragraph_offsets (I64)")
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise FileError(f"{path}: {split}.ids: expected ids in 0..<{size}")
            if offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) <= 0) or \
                    (ids.size and np.any(ids[offsets[1:] - 1] != self.special["sep"])):
                raise FileError(f"{path}: {split}.paragraph_offsets: expected 0 … {ids.size}, strictly increasing, "
                                "each paragraph closed by [SEP]")
            self.streams[split] = ids
        if seq_len < 3 or self.streams["train"].size < seq_len - 2:
            raise FileError(f"{path}: one training sequence of {seq_len} needs {seq_len - 2} tokens; "
                            f"the training split has {self.streams['train'].size}")

    def count(self, split):
        return self.streams[split].size // (self.seq_len - 2)

    def sequences(self, split, indices):
        """[len(indices), L] int64 ids of the packed sequences."""
        inner = self.seq_len - 2
        out = np.empty((len(indices), self.seq_len), dtype=np.int64)
        out[:, 0] = self.special["cls"]
        out[:, -1] = self.special["sep"]
        stream = self.streams[split]
        for row, i in enumerate(indices):
            out[row, 1:-1] = stream[i * inner:(i + 1) * inner]
        return out
