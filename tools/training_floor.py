#!/usr/bin/env python3
"""What issue 19's 1.5× would take in fp32: from tools/bench_train_peers.py's distillation JSONs, the
rate of matrix products PyTorch's fp32 step sustains and the rate 1.5× its tokens/s would need at the
same work, each against the FMA peak of the same cores measured in the same run.

    python3 tools/training_floor.py [RESULT.json ...]

At full width the student is the teacher's size and both sides run the same products (the JSON's
`flops_per_step`, which `--check-flops` matches to torch's own count), so 1.5× torch's tokens/s is
1.5× its product rate, whatever else either side does. The JSONs' `phases_last_round` (when they
have it) split the timed steps into those at full width and at the target widths; at the target
widths hd-distill multiplies only the kept units, so its work is smaller there and no such bound
holds. Prints the table and writes it into docs/PERFORMANCE.md between its markers. Standard library
only; the JSONs are the committed results, nothing is measured here.
"""
import argparse
import json
import os
import sys

from results_section import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results", "training-step")
# The latest fp32 run of each shape and thread count whose FMA peak was measured on as many cores as
# it ran threads (the BERT-base JSONs before distill-bertbase-t2-run2 read one core's peak at 2).
DEFAULT = ["distill-minilm-t1-run2.json", "distill-minilm-t2-run5.json", "distill-bertbase-t1.json",
           "distill-bertbase-t2-run2.json"]
BEGIN, END = "<!-- floor:begin (tools/training_floor.py) -->", "<!-- floor:end -->"
TARGET = 1.5


def row(path):
    with open(path) as f:
        d = json.load(f)
    if d.get("step") != "distill" or d.get("matmul", "fp32") != "fp32":
        sys.exit(f"{path}: expected an fp32 distillation result of tools/bench_train_peers.py")
    peak, flops = d["fma_peak_gflops_per_s"], d["flops_per_step"] / 1e9
    tokens = d["batch"] * d["seq_len"]
    torch_rate = d["runs"]["torch"]["tokens_per_second"] / tokens * flops
    hd_rate = d["runs"]["hd-distill"]["tokens_per_second"] / tokens * flops
    out = {"file": os.path.basename(path), "shape": d["shape"], "threads": d["threads"], "peak": peak,
           "torch": torch_rate / peak, "needed": TARGET * torch_rate / peak, "hd": hd_rate / peak,
           "ratio": d["ratio_hd_over_torch"]}
    full = (d.get("phases_last_round") or {}).get("full width")
    if full:
        torch_full = flops / full["torch"]["median_step_seconds"]
        out["torch_full"] = torch_full / peak
        out["needed_full"] = TARGET * torch_full / peak
        out["hd_full"] = flops / full["hd-distill"]["median_step_seconds"] / peak
    return out


def percent(x):
    return "—" if x is None else f"{100 * x:.0f} %"


def table(rows):
    lines = ["| run (JSON) | shape, threads | FMA peak GFLOP/s | torch fp32: products at | 1.5× torch would need "
             "| hd-distill at | full width only: torch / 1.5× torch / hd-distill |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        full = (f"{percent(r.get('torch_full'))} / **{percent(r.get('needed_full'))}** / {percent(r.get('hd_full'))}"
                if "torch_full" in r else "not split by phase")
        lines.append(f"| {r['file']} | {r['shape']}, {r['threads']} | {r['peak']:.0f} | {percent(r['torch'])} "
                     f"| **{percent(r['needed'])}** | {percent(r['hd'])} ({r['ratio']:.2f}× torch) | {full} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="*", help="bench_train_peers.py distillation JSONs (default: the latest fp32 ones)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/PERFORMANCE.md as it is")
    args = p.parse_args()
    paths = args.results or [os.path.join(RESULTS, name) for name in DEFAULT]
    text = "\n".join([BEGIN, "", table([row(path) for path in paths]), "", END])
    print(text)
    if not args.no_write:
        replace_section(os.path.join(ROOT, "docs", "PERFORMANCE.md"), BEGIN, END, text)


if __name__ == "__main__":
    main()
