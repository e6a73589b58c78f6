#!/usr/bin/env python3
"""Times the Python reference loaders the Swift readers are compared against (docs/PERFORMANCE.md).

  python tools/bench_load.py make-bert-base OUT.safetensors   # random f32 tensors with BERT-base shapes
  python tools/bench_load.py safetensors FILE [--repeat N]    # safetensors.numpy.load_file, then + sum
  python tools/bench_load.py make-bert-base-npz OUT.npz [--compressed]   # same tensors, np.savez(_compressed)
  python tools/bench_load.py npz FILE [--repeat N]            # numpy.load every member, then + sum
  python tools/bench_load.py compare HD_CONVERT FILE... [--rounds N] [--threads T] [--json OUT]
      # the Python loader of each FILE and `HD_CONVERT bench-load FILE` interleaved, in one run

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


def python_load(path):
    """The Python reference loader for a file, materialising every array."""
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return lambda: load_file(path)

    def load_all():
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    return load_all


def compare(hd_convert, files, rounds, threads, json_out):
    """Rounds alternate the two readers on each file, so machine noise hits both alike; each figure is
    the median over rounds of a per-round median. The ratio is ours / Python's (< 1: we are faster)."""
    import json
    import subprocess

    rows = []
    for path in files:
        load = python_load(path)
        load()  # warm the page cache for both readers
        ours, theirs, ours_sum, theirs_sum, rss = [], [], [], [], []
        for _ in range(rounds):
            theirs.append(timed(load, 3)[0])
            theirs_sum.append(timed(lambda: sum(float(a.sum()) for a in load().values()), 3)[0])
            out = subprocess.run([hd_convert, "bench-load", path, "--repeat", "3", "--threads", str(threads), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            report = json.loads(out)
            ours.append(report["read_s"])
            ours_sum.append(report["read_and_sum_s"])
            rss.append(report["peak_rss_mib"])
            values = report["values"]
        row = {"file": path, "values": values, "tensor_mib": values * 4 / 2**20,
               "python_read_s": statistics.median(theirs), "ours_read_s": statistics.median(ours),
               "python_read_sum_s": statistics.median(theirs_sum), "ours_read_sum_s": statistics.median(ours_sum),
               "ours_peak_rss_mib": max(rss), "threads": threads, "rounds": rounds}
        row["read_ratio"] = row["ours_read_s"] / row["python_read_s"]
        row["read_sum_ratio"] = row["ours_read_sum_s"] / row["python_read_sum_s"]
        row["peak_rss_over_tensors"] = row["ours_peak_rss_mib"] / row["tensor_mib"]
        rows.append(row)
    print(f"{'file':48} {'python':>8} {'ours':>8} {'ratio':>6} | {'py+sum':>8} {'ours+sum':>8} {'ratio':>6} | peak RSS / tensors")
    for r in rows:
        print(f"{r['file'][-48:]:48} {r['python_read_s']:8.4f} {r['ours_read_s']:8.4f} {r['read_ratio']:6.2f} | "
              f"{r['python_read_sum_s']:8.4f} {r['ours_read_sum_s']:8.4f} {r['read_sum_ratio']:6.2f} | "
              f"{r['ours_peak_rss_mib']:.0f} MiB / {r['tensor_mib']:.0f} MiB = {r['peak_rss_over_tensors']:.2f}")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(rows, f, indent=1)


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
    cmp = sub.add_parser("compare")
    cmp.add_argument("hd_convert")
    cmp.add_argument("files", nargs="+")
    cmp.add_argument("--rounds", type=int, default=5)
    cmp.add_argument("--threads", type=int, default=2)
    cmp.add_argument("--json")
    args = ap.parse_args()
    if args.cmd == "make-bert-base":
        make_bert_base(args.out)
    elif args.cmd == "safetensors":
        bench_safetensors(args.file, args.repeat)
    elif args.cmd == "make-bert-base-npz":
        make_bert_base_npz(args.out, args.compressed)
    elif args.cmd == "npz":
        bench_npz(args.file, args.repeat)
    elif args.cmd == "compare":
        compare(args.hd_convert, args.files, args.rounds, args.threads, args.json)


if __name__ == "__main__":
    main()
