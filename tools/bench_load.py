#!/usr/bin/env python3
"""Times the Python reference loaders the Swift readers are compared against (docs/PERFORMANCE.md).

  python tools/bench_load.py make-bert-base OUT.safetensors   # random f32 tensors with BERT-base shapes
  python tools/bench_load.py safetensors FILE [--repeat N]    # safetensors.numpy.load_file, then + sum
  python tools/bench_load.py make-bert-base-npz OUT.npz [--compressed]   # same tensors, np.savez(_compressed)
  python tools/bench_load.py npz FILE [--repeat N]            # numpy.load every member, then + sum

Each figure is the median of N runs in one process with a warm page cache (the first run warms it),
so it measures parsing and copying, not the disk. "sum" touches every value: np.sum per tensor in f32.
"""
import argparse
import statistics
import time

import numpy as np


def bert_base_shapes():
    d, f, vocab, layers = 768, 3072, 30522, 12
    shapes = {
        "bert.embeddings.word_embeddings.weight": (vocab, d),
        "bert.embeddings.position_embeddings.weight": (512, d),
        "bert.embeddings.token_type_embeddings.weight": (2, d),
        "bert.embeddings.LayerNorm.weight": (d,),
        "bert.embeddings.LayerNorm.bias": (d,),
        "bert.pooler.dense.weight": (d, d),
        "bert.pooler.dense.bias": (d,),
        "cls.predictions.bias": (vocab,),
        "cls.predictions.transform.dense.weight": (d, d),
        "cls.predictions.transform.dense.bias": (d,),
        "cls.predictions.transform.LayerNorm.weight": (d,),
        "cls.predictions.transform.LayerNorm.bias": (d,),
    }
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[p + m + ".weight"] = (d, d)
            shapes[p + m + ".bias"] = (d,)
        shapes[p + "intermediate.dense.weight"] = (f, d)
        shapes[p + "intermediate.dense.bias"] = (f,)
        shapes[p + "output.dense.weight"] = (d, f)
        shapes[p + "output.dense.bias"] = (d,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = (d,)
            shapes[p + ln + ".bias"] = (d,)
    return shapes


def make_bert_base(out):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) * 0.02 for k, s in bert_base_shapes().items()}
    save_file(tensors, out)
    n = sum(a.size for a in tensors.values())
    print(f"wrote {out}: {len(tensors)} tensors, {n} parameters")


def timed(fn, repeat):
    fn()  # warm the page cache and imports
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_safetensors(path, repeat):
    from safetensors.numpy import load_file

    load, tensors = timed(lambda: load_file(path), repeat)
    n = sum(a.size for a in tensors.values())
    print(f"safetensors.numpy.load_file        {load:.4f} s  ({len(tensors)} tensors, {n} values)")

    def load_and_sum():
        return sum(float(a.sum()) for a in load_file(path).values())

    both, total = timed(load_and_sum, repeat)
    print(f"safetensors.numpy.load_file + sum  {both:.4f} s  (sum {total:.6f})")


def make_bert_base_npz(out, compressed):
    rng = np.random.default_rng(0)
    tensors = {k: rng.standard_normal(s, dtype=np.float32) * 0.02 for k, s in bert_base_shapes().items()}
    (np.savez_compressed if compressed else np.savez)(out, **tensors)
    n = sum(a.size for a in tensors.values())
    print(f"wrote {out}: {len(tensors)} tensors, {n} parameters, {'deflated' if compressed else 'stored'}")


def bench_npz(path, repeat):
    # np.load is lazy: indexing a member reads (and inflates) it, so "load" materialises every array.
    def load_all():
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    load, tensors = timed(load_all, repeat)
    n = sum(a.size for a in tensors.values())
    print(f"numpy.load (all members)           {load:.4f} s  ({len(tensors)} tensors, {n} values)")

    def load_and_sum():
        return sum(float(a.sum()) for a in load_all().values())

    both, total = timed(load_and_sum, repeat)
    print(f"numpy.load (all members) + sum     {both:.4f} s  (sum {total:.6f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-bert-base")
    mk.add_argument("out")
    st = sub.add_parser("safetensors")
    st.add_argument("file")
    st.add_argument("--repeat", type=int, default=5)
    mkz = sub.add_parser("make-bert-base-npz")
    mkz.add_argument("out")
    mkz.add_argument("--compressed", action="store_true")
    nz = sub.add_parser("npz")
    nz.add_argument("file")
    nz.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.cmd == "make-bert-base":
        make_bert_base(args.out)
    elif args.cmd == "safetensors":
        bench_safetensors(args.file, args.repeat)
    elif args.cmd == "make-bert-base-npz":
        make_bert_base_npz(args.out, args.compressed)
    elif args.cmd == "npz":
        bench_npz(args.file, args.repeat)


if __name__ == "__main__":
    main()
