"""Training throughput of the torch trainer (P processes × 1 thread, gloo) against `hd-distill --threads P`
on the same run: same teacher, token file, flags and seed, timed in alternating turns so both see the
same machine load; tokens/s counts optimiser steps only (each trainer's `summary` log record), and the
runs' last train records are compared to show they computed the same thing.

    .venv-torch/bin/python tools/torch/bench_throughput.py TEACHER.safetensors corpus.tokens \\
        [--processes 2] [--rounds 3] [-- hd-distill flags…]

Default flags: --seq-len 128 --batch 16 --steps 20 --hidden/--ffn/--head-size at half the teacher's widths
(cubic schedule, defaults), --eval-every 0.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from hd_files import read_safetensors  # noqa: E402


def summary_and_last(log):
    with open(log) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r["kind"] == "summary"][0], [r for r in rows if r["kind"] == "train"][-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("teacher")
    p.add_argument("tokens")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = p.parse_args(argv[:cut])
    a.flags = argv[cut + 1:]
    config = json.loads(read_safetensors(a.teacher)[1]["hd.config"])
    d, f, hs = config["hidden_size"], config["intermediate_size"], config["hidden_size"] // config["num_attention_heads"]
    flags = a.flags or ["--seq-len", "128", "--batch", "16", "--steps", "20", "--hidden", str(d // 2), "--ffn", str(f // 2),
                        "--head-size", str(hs // 2), "--eval-every", "0", "--save-every", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    work = tempfile.mkdtemp(prefix="hd-bench.")
    n = a.processes
    runs = {"hd-distill --threads %d" % n: lambda log, out: [os.path.join(ROOT, ".build/release/hd-distill"), a.teacher, "--corpus", a.tokens,
                                                            "-o", out, "--log", log, "--threads", str(n)] + flags,
            "torch %d processes × 1 thread" % n: lambda log, out: [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--standalone",
                                                                  "--nproc_per_node", str(n), "--", os.path.join(HERE, "hd_distill.py"), a.teacher,
                                                                  "--corpus", a.tokens, "-o", out, "--log", log, "--threads", "1"] + flags}
    rates = {k: [] for k in runs}
    print("load average at the start: %.2f %.2f %.2f" % os.getloadavg())
    last = {}
    for r in range(a.rounds):
        for name, cmd in runs.items():
            log, out = os.path.join(work, f"{r}-{len(rates[name])}-{name[:5]}.jsonl"), os.path.join(work, f"{name[:5]}.ckpt")
            subprocess.run(cmd(log, out), check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            summary, last[name] = summary_and_last(log)
            rates[name].append(summary["tokens_per_second"])
            print(f"round {r + 1}: {name}: {summary['tokens_per_second']:.0f} tokens/s ({summary['train_seconds']:.2f} s for {summary['tokens']} tokens)")
    print("load average at the end: %.2f %.2f %.2f" % os.getloadavg())
    print("\n| trainer | tokens/s (median of %d) | runs |\n|---|---|---|" % a.rounds)
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.0f} | {', '.join('%.0f' % v for v in values)} |")
    (sa, la), (sb, lb) = list(last.items())
    worst = max(abs(la[k] - lb[k]) / max(abs(la[k]), abs(lb[k]), 1e-30) for k in la if isinstance(la[k], float) and "seconds" not in k)
    print(f"\nsame run: step {la['step']}'s logged terms agree to {worst:.1e} relative (flags: {' '.join(flags)})")


if __name__ == "__main__":
    main()
