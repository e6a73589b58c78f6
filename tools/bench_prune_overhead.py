#!/usr/bin/env python3
"""What pruning adds to a distillation step: hd-distill with and without pruning, interleaved.

    python3 tools/bench_prune_overhead.py TEACHER --corpus FILE... [--steps 30 --batch 16 --rounds 3]

Runs, in each round, a plain distillation run and pruning runs (PLATON importance, masks updated
every step — the worst case — and every 10 steps), same seed, batch, length and threads. From the
JSONL logs it takes per-step wall time (`step_seconds`, first 3 steps dropped as warm-up) and the
pruner's own time inside the step (`prune_seconds`: importance EMAs, unit scores, top-k, zeroing of
pruned weights, moments and gradients), and prints medians and the overhead ratios:
  in-step share = mean prune_seconds / median plain step
  step ratio    = median pruning step / median plain step − 1   (noisier: includes machine noise)
Target (issue 6): overhead ≤ 10 % of a plain distillation step. Writes JSON with --json.
Training compute stays at full width while masked, so the step times compare like for like.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run(tool, teacher, corpus, args, extra, log):
    command = [tool, teacher, "--corpus", *corpus, "-o", log + ".ckpt", "--steps", str(args.steps),
               "--batch", str(args.batch), "--seq-len", str(args.seq_len), "--threads", str(args.threads),
               "--eval-every", "0", "--held-out-every", "0", "--save-every", "0", "--seed", "1", "--log", log, *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)}\nexit {done.returncode}: {done.stderr.strip()}")
    steps = [json.loads(line) for line in open(log, encoding="utf-8") if '"train"' in line]
    return steps[3:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher")
    parser.add_argument("--corpus", nargs="+", required=True)
    parser.add_argument("--tool", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "hd-distill"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", nargs=3, type=int, default=[64, 256, 32], metavar=("HIDDEN", "FFN", "HEAD"))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    hidden, ffn, head = args.target
    prune = ["--hidden", str(hidden), "--ffn", str(ffn), "--head-size", str(head), "--prune-start", "0",
             "--prune-end", str(args.steps)]
    variants = {"plain": [], "prune every step": prune + ["--prune-every", "1"],
                "prune every 10": prune + ["--prune-every", "10"]}
    steps = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(args.rounds):
            for name, extra in variants.items():
                log = os.path.join(scratch, f"{r}-{name.replace(' ', '-')}.jsonl")
                steps[name] += run(args.tool, args.teacher, args.corpus, args, extra, log)
                print(f"round {r + 1}/{args.rounds}: {name} done", file=sys.stderr)
    plain = statistics.median(s["step_seconds"] for s in steps["plain"])
    result = {"steps_per_run": args.steps, "rounds": args.rounds, "batch": args.batch, "seq_len": args.seq_len,
              "threads": args.threads, "load_average": os.getloadavg(), "plain_step_seconds": plain, "variants": {}}
    print(f"plain distillation step: median {plain * 1e3:.1f} ms ({len(steps['plain'])} steps)")
    for name in list(variants)[1:]:
        step = statistics.median(s["step_seconds"] for s in steps[name])
        pruner = statistics.median(s["prune_seconds"] for s in steps[name])
        # The mean counts the mask-update steps, which the median of "every 10" skips.
        mean = statistics.fmean(s["prune_seconds"] for s in steps[name])
        result["variants"][name] = {"step_seconds": step, "prune_seconds_median": pruner, "prune_seconds_mean": mean,
                                    "in_step_share": mean / plain, "step_ratio": step / plain - 1}
        print(f"{name}: step median {step * 1e3:.1f} ms; pruner median {pruner * 1e3:.2f} ms, mean {mean * 1e3:.2f} ms "
              f"= {100 * mean / plain:.2f} % of a plain step; step ratio {100 * (step / plain - 1):+.1f} %")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
