#!/usr/bin/env python3
"""Does distilling with bf16 products (`hd-distill --matmul bf16`, issue 19) give the student that
fp32 products give? The evidence experiment's HomoDistil student (tools/experiment.py, student a:
all-MiniLM-L6-v2 to hidden 192 / FFN 768, cubic schedule, PLATON, 500 steps of 16 × 64 tokens on its
corpus) distilled with each precision and each data seed, one thread per run:

    python3 tools/matmul_experiment.py [--seeds 0,1,2] [--jobs 2] [--steps 500]

And does fine-tuning with bf16 products (`hd-finetune --matmul bf16`) give the classifier fp32 gives?
all-MiniLM-L6-v2 fine-tuned on rt_polarity (split 0; the evidence experiment's recipe: 2 epochs,
batch 32, lr 5e-5, 64 tokens, one thread) with each precision and fine-tuning seed: dev accuracy
and macro-F1 of the best epoch, beside the distillation table.

Per run: the last held-out evaluation (hidden, attention and embedding terms, pooled cosine to the
teacher over 256 held-out sequences) and the exported student's fidelity (`hd-infer compare`: mean
cosine of its mean-pooled embeddings to the teacher's on 1,000 SNLI test hypotheses, over the kept
dimensions), as JSON in docs/results/matmul-bf16/ (written when a run finishes; a rerun skips
finished runs). Then docs/RESULTS.md's table of mean ± std over the seeds per precision. The seed
changes the data order (the student starts as the teacher either way). Training time is recorded,
not compared: runs go two at a time, and speed is docs/PERFORMANCE.md's (tools/bench_train_peers.py).
Needs what tools/experiment.py needs (../shared/data, the release build, the teacher); standard
library only.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import experiment as ev
from results_section import replace_section

RESULTS = os.path.join(ev.ROOT, "docs", "results", "matmul-bf16")
WORK = os.path.join(ev.ROOT, ".cache", "matmul-bf16")
BEGIN, END = "<!-- matmul:begin (tools/matmul_experiment.py) -->", "<!-- matmul:end -->"
PRECISIONS = ["fp32", "bf16"]
TERMS = [("hidden", "held-out hidden MSE"), ("attention", "held-out attention MSE"), ("embedding", "held-out embedding MSE"),
         ("pooled_cosine", "held-out pooled cosine"), ("fidelity", "fidelity: mean cosine, 1,000 SNLI sentences")]


def distill(e: ev.Experiment, precision: str, seed: int, steps: int) -> dict:
    d = os.path.join(WORK, f"{precision}-seed{seed}")
    os.makedirs(d, exist_ok=True)
    ckpt, log, export = (os.path.join(d, name) for name in ("student.ckpt", "distill.jsonl", "student.safetensors"))
    command = [os.path.join(ev.BIN, "hd-distill"), e.teacher, "--corpus", e.corpus, "-o", ckpt,
               "--steps", str(steps), "--batch", str(ev.RECIPE["batch"]), "--seq-len", str(ev.RECIPE["seq_len"]),
               "--lr", ev.RECIPE["lr"], "--warmup", str(steps // 10), "--prune-every", "10",
               "--eval-every", str(min(ev.RECIPE["eval_every"], steps)), "--eval-sequences", str(ev.RECIPE["eval_sequences"]),
               "--save-every", "0", "--seed", str(seed), "--threads", "1", "--log", log,
               "--matmul", precision] + ev.STUDENTS["a"][1]
    if os.path.exists(log):
        os.remove(log)
    with open(os.path.join(d, "distill.stderr"), "w") as err:
        ev.run(command, stderr=err)
    ev.run([os.path.join(ev.BIN, "hd-export"), "--shrink", ckpt, "-o", export], stdout=subprocess.DEVNULL)
    records = [ev.json.loads(line) for line in open(log) if line.strip()]
    evals = [r for r in records if r.get("kind") == "eval"]
    summary = [r for r in records if r.get("kind") == "summary"][-1]
    compare = [os.path.join(ev.BIN, "hd-infer"), "compare", e.teacher, export, "--iterations", "1", "--warmup", "0",
               "--threads", "1", "--json", "--sentences", os.path.join(ev.ROOT, ".cache", "evidence", "fidelity-sentences.txt")]
    fidelity = ev.json.loads(ev.run(compare, capture_output=True, text=True).stdout)["sentences"]
    return {"precision": precision, "seed": seed, "steps": steps, "held_out": evals[-1], "curve": evals,
            "fidelity": {"mean_cosine": fidelity["mean"], "std_cosine": fidelity["std"], "min_cosine": fidelity["min"],
                         "sentences": fidelity["sentences"], "dimensions": fidelity["compared_dims"]},
            "train_seconds": summary["train_seconds"], "tokens_per_second": summary["tokens_per_second"],
            "command": shlex.join(e.relative(command)), "fidelity_command": shlex.join(e.relative(compare))}


def finetune(e: ev.Experiment, precision: str, seed: int) -> dict:
    out = os.path.join(WORK, "finetuned", f"{precision}-seed{seed}.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    command = [os.path.join(ev.BIN, "hd-finetune"), e.teacher, "--train", os.path.join(e.split, "train.tsv"),
               "--dev", os.path.join(e.split, "dev.tsv"), "-o", out] + ev.FINETUNE + ["--seed", str(seed), "--json",
                                                                                       "--matmul", precision]
    result = ev.json.loads(ev.run(command, capture_output=True, text=True).stdout)
    best = result["epochs"][result["best_epoch"] - 1]
    return {"precision": precision, "seed": seed, "split_seed": e.split_seed, "accuracy": best["accuracy"],
            "macro_f1": best["macro_f1"], "finetune": result, "command": shlex.join(e.relative(command))}


def finetune_table(runs: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in runs})
    lines = ["| rt_polarity dev, best epoch (mean ± std over fine-tuning seeds " + ", ".join(map(str, seeds)) + ") | "
             + " | ".join(f"products in {p}" for p in PRECISIONS) + " | bf16 − fp32, mean of the per-seed differences |",
             "|---|" + "---|" * (len(PRECISIONS) + 1)]
    for key, title in [("accuracy", "accuracy (%)"), ("macro_f1", "macro-F1 (%)")]:
        cells = []
        for p in PRECISIONS:
            values = [100 * r[key] for r in runs if r["precision"] == p]
            cells.append(f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else "—")
        difference = [100 * (b[key] - a[key]) for a in runs for b in runs
                      if a["precision"] == "fp32" and b["precision"] == "bf16" and a["seed"] == b["seed"]]
        cells.append(f"{statistics.fmean(difference):+.2f} ± {statistics.stdev(difference):.2f}" if len(difference) > 1 else "—")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def value(run: dict, term: str) -> float:
    return run["fidelity"]["mean_cosine"] if term == "fidelity" else run["held_out"][term]


def table(runs: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in runs})
    lines = ["| measure (mean ± std over data seeds " + ", ".join(map(str, seeds)) + ") | "
             + " | ".join(f"products in {p}" for p in PRECISIONS) + " | bf16 − fp32, mean of the per-seed differences |",
             "|---|" + "---|" * (len(PRECISIONS) + 1)]
    for term, title in TERMS:
        cells = []
        for p in PRECISIONS:
            values = [value(r, term) for r in runs if r["precision"] == p]
            cells.append(f"{statistics.fmean(values):.5g} ± {statistics.stdev(values):.2g}" if len(values) > 1 else "—")
        pairs = [(value(a, term), value(b, term)) for a in runs for b in runs
                 if a["precision"] == "fp32" and b["precision"] == "bf16" and a["seed"] == b["seed"]]
        difference = [b - a for a, b in pairs]
        cells.append(f"{statistics.fmean(difference):+.2g} ± {statistics.stdev(difference):.2g}" if len(difference) > 1 else "—")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(runs: list[dict], finetuned: list[dict]) -> None:
    steps = runs[0]["steps"]
    tuned = ["", "all-MiniLM-L6-v2 fine-tuned on rt_polarity (split 0, the evidence experiment's recipe: "
             "2 epochs, batch 32, lr 5e-5, 64 tokens, one thread) with each precision (`hd-finetune --matmul`), "
             "for each fine-tuning seed.", "", finetune_table(finetuned)] if finetuned else []
    text = "\n".join([
        BEGIN,
        f"The evidence experiment's HomoDistil student (a: all-MiniLM-L6-v2 to hidden 192 / FFN 768, {steps} steps of "
        f"{ev.RECIPE['batch']} × {ev.RECIPE['seq_len']} tokens, one thread) distilled with fp32 products and with bf16 "
        "products on AMX tiles (`--matmul bf16`), for each data seed; the last held-out evaluation (256 sequences) and "
        "the exported student's fidelity to the teacher. `python3 tools/matmul_experiment.py`; JSON in "
        "docs/results/matmul-bf16/.",
        "",
        table(runs)] + tuned + [END])
    replace_section(os.path.join(ev.ROOT, "docs", "RESULTS.md"), BEGIN, END, text)
    print(table(runs))
    if finetuned:
        print(finetune_table(finetuned))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--steps", type=int, default=ev.RECIPE["steps"])
    p.add_argument("--no-finetune", action="store_true", help="the distillation runs only")
    args = p.parse_args()
    e = ev.Experiment(argparse.Namespace(quick=False, seeds="0", split_seed=0))
    e.prepare()
    sentences = os.path.join(ev.ROOT, ".cache", "evidence", "fidelity-sentences.txt")
    if not os.path.exists(sentences):
        sys.exit(f"{sentences}: missing; run the evidence experiment's fidelity cell first (tools/experiment.sh)")
    todo = [(p_, int(s)) for s in args.seeds.split(",") for p_ in PRECISIONS]

    def cell(item):
        precision, seed = item
        path = os.path.join(RESULTS, f"{precision}-seed{seed}.json")
        if not os.path.exists(path):
            print(f"running {precision} seed {seed}", file=sys.stderr)
            ev.write_json(path, distill(e, precision, seed, args.steps))
        return ev.read_json(path)

    def tuned(item):
        precision, seed = item
        path = os.path.join(RESULTS, f"finetune-{precision}-seed{seed}.json")
        if not os.path.exists(path):
            print(f"fine-tuning {precision} seed {seed}", file=sys.stderr)
            ev.write_json(path, finetune(e, precision, seed))
        return ev.read_json(path)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(cell, todo))
        finetuned = [] if args.no_finetune else list(pool.map(tuned, todo))
    write_results(runs, finetuned)


if __name__ == "__main__":
    main()
