#!/usr/bin/env python3
"""Fine-tuning speed, hd-finetune against the same recipe in PyTorch + transformers
(tools/finetune_transformers.py), same machine, same threads, same run, alternating.
By hand only, never in CI (needs .venv-torch: tools/venv-torch.sh).

    .venv-torch/bin/python tools/bench_finetune_peers.py MODEL_DIR --train T.tsv --dev D.tsv \
        [--examples 1280] [--seq-len 64] [--batch 32] [--threads 2] [--repeats 3] [--matmul fp32|bf16] [--json OUT]

Each tool trains one epoch on --examples evenly spaced rows of --train (the same rows, the same batch
size and sequence length) --repeats times, the two alternating; examples/s counts the optimiser steps
only (both tools time them the same way: tokenising, loading and evaluation excluded). Reports each
run, the medians and hd-finetune's median over PyTorch's. `--matmul bf16`: hd-finetune --matmul bf16
against PyTorch with its training forward under torch.autocast("cpu", torch.bfloat16), and PyTorch in
fp32 as a third side in every repeat.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--examples", type=int, default=1280)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hd-finetune", default=os.path.join(ROOT, ".build/release/hd-finetune"))
    p.add_argument("--matmul", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: hd-finetune --matmul bf16 against PyTorch under bf16 autocast, with PyTorch in fp32 beside them")
    p.add_argument("--json")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-finetune-")
    subset = os.path.join(work, "train.tsv")
    with open(a.train, encoding="utf-8") as f, open(subset, "w", encoding="utf-8") as out:
        # Rows may span lines inside quotes; the csv module keeps them whole. Evenly spaced rows, so a
        # file sorted by label still gives every label.
        csv.field_size_limit(sys.maxsize)
        rows = list(csv.reader(f, delimiter="\t"))
        header, rows = rows[0], rows[1:]
        step = max(1, len(rows) // a.examples)
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[::step][:a.examples])
    common = ["--seq-len", str(a.seq_len), "--epochs", "1", "--batch", str(a.batch), "--threads", str(a.threads), "--seed", "0"]
    runs = {"homodistil": [], "pytorch": []} | ({"pytorch fp32": []} if a.matmul == "bf16" else {})
    for repeat in range(a.repeats):
        ours = subprocess.run([a.hd_finetune, a.model_dir, "--train", subset, "--dev", a.dev, "-o", os.path.join(work, "out.ckpt"),
                               "--json", "--matmul", a.matmul] + common, capture_output=True, text=True, check=True)
        runs["homodistil"].append(json.loads(ours.stdout)["examples_per_second"])
        for side, matmul in [("pytorch", a.matmul)] + ([("pytorch fp32", "fp32")] if a.matmul == "bf16" else []):
            peer = subprocess.run([sys.executable, os.path.join(ROOT, "tools/finetune_transformers.py"), a.model_dir, "--train", subset,
                                   "--dev", a.dev, "--matmul", matmul] + common, capture_output=True, text=True, check=True)
            runs[side].append(json.loads(peer.stdout)["examples_per_second"])
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items()) + " examples/s", file=sys.stderr)
    import torch
    result = {"model": os.path.basename(a.model_dir.rstrip("/")), "matmul": a.matmul, "examples": a.examples, "seq_len": a.seq_len, "batch": a.batch,
              "threads": a.threads, "repeats": a.repeats, "runs_examples_per_second": runs,
              "median_examples_per_second": {k: statistics.median(v) for k, v in runs.items()},
              "torch": torch.__version__, "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t"),
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}
    result["ratio_homodistil_over_pytorch"] = result["median_examples_per_second"]["homodistil"] / result["median_examples_per_second"]["pytorch"]
    text = json.dumps(result, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
