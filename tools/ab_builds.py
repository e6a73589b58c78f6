#!/usr/bin/env python3
"""Two builds of hd-distill against each other on one training step, alternating, by hand (never in
CI): the way to tell whether a change moved the step when the machine drifts by more than the change
between two peer benchmarks run minutes apart.

    git worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c release --product hd-distill)
    OPENBLAS_CORETYPE=Haswell python3 tools/ab_builds.py /tmp/before/.build/release/hd-distill \\
        .build/release/hd-distill --step mlm --threads 1,2 --rounds 5 --out ab.json

`--step mlm`: the masked-LM step on splade-tiny (`hd-distill --mlm-only`); `--step distill`: the
HomoDistil step at MiniLM shape with tools/bench_train_peers.py's recipe (towards 192 / 768, its
pruning schedule for the run's length), `--matmul` as given. Each round runs the two builds one after
the other (which goes first alternates), batch 16 × 128, `--steps` steps; a run's tokens/s is over
its steps after the first `--warmup-steps` (their `step_seconds` in its --log). Prints every run and
the medians per build and thread count, and writes them as JSON.
"""
import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = {"mlm": REPO / ".cache/models/splade-tiny", "distill": REPO / ".cache/models/minilm"}


def run(binary: str, step: str, threads: int, args, work: Path) -> float:
    log = work / "log.jsonl"
    log.unlink(missing_ok=True)
    cmd = [binary, str(MODELS[step]), "--corpus", *args.corpus, "-o", str(work / "out.ckpt"), "--steps", str(args.steps),
           "--batch", "16", "--seq-len", "128", "--threads", str(threads), "--held-out-every", "0", "--eval-every", "0",
           "--save-every", "0", "--log", str(log), "--matmul", args.matmul]
    if step == "mlm":
        cmd.append("--mlm-only")
    else:
        start = args.steps // 10
        cmd += ["--hidden", "192", "--ffn", "768", "--prune-start", str(start),
                "--prune-end", str(max(start + 1, args.steps * 7 // 10)), "--prune-every", "10"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    seconds = [r["step_seconds"] for r in records if r["kind"] == "train"][args.warmup_steps:]
    return len(seconds) * 16 * 128 / sum(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="the hd-distill binary to compare against")
    p.add_argument("after", help="the hd-distill binary being tried")
    p.add_argument("--step", choices=MODELS, default="mlm")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--matmul", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--corpus", nargs="+", default=[str(REPO / "data/demo/northanger-abbey.txt")])
    p.add_argument("--out", default="ab.json")
    args = p.parse_args()
    builds = {"before": args.before, "after": args.after}
    result = {"step": args.step, "matmul": args.matmul, "steps": args.steps, "warmup_steps": args.warmup_steps,
              "rounds": args.rounds, "builds": builds, "tokens_per_second": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in [int(t) for t in args.threads.split(",")]:
            samples = {name: [] for name in builds}
            for r in range(args.rounds):
                order = list(builds) if r % 2 == 0 else list(reversed(builds))
                for name in order:
                    samples[name].append(run(builds[name], args.step, threads, args, Path(tmp)))
                print(f"{threads} thread(s), round {r + 1}: " + ", ".join(f"{n} {samples[n][-1]:.0f}" for n in builds), flush=True)
            medians = {n: statistics.median(v) for n, v in samples.items()}
            result["tokens_per_second"][str(threads)] = {"samples": samples, "median": medians,
                                                         "after_over_before": medians["after"] / medians["before"]}
            print(f"{threads} thread(s): median before {medians['before']:.0f}, after {medians['after']:.0f} tok/s: "
                  f"{medians['after'] / medians['before']:.3f}×")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
