#!/usr/bin/env python3
"""Regenerates the "Downstream tasks" section of docs/RESULTS.md from the JSON under docs/results/
(no number in that section is typed by hand). Standard library only.

    python3 tools/downstream_results.py            # rewrite the section between its markers
    python3 tools/downstream_results.py --print    # print it instead

Reads: docs/results/finetune-minilm-rt/{homodistil,transformers}-seed*.json (tools/finetune_transformers.py
and hd-finetune --json), docs/results/finetune-speed.json (tools/bench_finetune_peers.py),
docs/results/distill-minilm-pooled*.json (tools/embedding_fidelity.py) and
docs/results/distill-minilm-task.json (hd-infer evaluate --json of the student and the teacher) and
docs/results/quant-classifier-minilm-rt.json (hd-infer evaluate/classify at fp32, bf16, int8).
Missing files are marked as missing.
"""
import argparse
import glob
import json
import os
import statistics

from results_section import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs/results")
BEGIN, END = "<!-- downstream:begin (tools/downstream_results.py) -->", "<!-- downstream:end -->"


def load(path):
    """The JSON at `path` under docs/results, or None when it is missing or unfinished (empty)."""
    try:
        with open(os.path.join(RESULTS, path)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def mean_std(values):
    if not values:
        return "missing"
    if len(values) == 1:
        return f"{100 * values[0]:.2f} (1 seed)"
    return f"{100 * statistics.fmean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def finetune_table():
    rows = ["| tool | seeds | dev accuracy (%) mean ± std | per seed | best epochs | examples/s (each run, alone or not) |",
            "|---|---|---|---|---|---|"]
    means = {}
    for tool, name in (("homodistil", "hd-finetune"), ("transformers", "transformers 5.23 / torch 2.15")):
        paths = sorted(glob.glob(os.path.join(RESULTS, f"finetune-minilm-rt/{tool}-seed*.json")))
        runs = [r for r in (load(os.path.relpath(p, RESULTS)) for p in paths) if r]
        accuracies = [max(e["accuracy"] if "accuracy" in e else e["dev_accuracy"] for e in r["epochs"]) for r in runs]
        means[tool] = statistics.fmean(accuracies) if accuracies else None
        per_seed = ", ".join(f"{100 * a:.2f}" for a in accuracies)
        epochs = ", ".join(str(r["best_epoch"]) for r in runs)
        speeds = ", ".join(f"{r['examples_per_second']:.1f}" for r in runs)
        rows.append(f"| {name} | {len(runs)} | {mean_std(accuracies)} | {per_seed} | {epochs} | {speeds} |")
    if means.get("homodistil") is not None and means.get("transformers") is not None:
        rows.append("")
        rows.append(f"Difference of the means: {100 * (means['homodistil'] - means['transformers']):+.2f} points "
                    "(target: within 1.0).")
    return "\n".join(rows)


def speed_table():
    s = load("finetune-speed.json")
    if not s:
        return "Speed: missing (run tools/bench_finetune_peers.py)."
    m = s["median_examples_per_second"]
    return "\n".join([
        f"Same run, alternating, {s['repeats']} repeats, {s['examples']} examples × 1 epoch, batch {s['batch']}, seq ≤ {s['seq_len']}, "
        f"{s['threads']} threads, OPENBLAS_CORETYPE={s['openblas_coretype']}, {s['cpu']}:",
        "",
        "| | hd-finetune | PyTorch (transformers) | ratio |",
        "|---|---|---|---|",
        f"| examples/s, median | {m['homodistil']:.1f} | {m['pytorch']:.1f} | **{s['ratio_homodistil_over_pytorch']:.2f}×** |",
        "| runs | " + ", ".join(f"{x:.1f}" for x in s["runs_examples_per_second"]["homodistil"]) + " | "
        + ", ".join(f"{x:.1f}" for x in s["runs_examples_per_second"]["pytorch"]) + " | |"])


def pooled_table():
    runs = [r for r in (load(os.path.relpath(p, RESULTS)) for p in sorted(glob.glob(os.path.join(RESULTS, "distill-minilm-pooled*.json")))) if r]
    if not runs:
        return "Pooled-cosine student: missing."
    rows = ["| student | distilled on | steps | parameters | FLOPs / 128-token sequence | held-out corpus sequences: mean cosine | "
            "held-out sentences | mean cosine ± std | 5th percentile | min |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for p in runs:
        f = p["fidelity"]
        rows.append(f"| {p['widths']} | {p['corpus']} | {p['steps']} | {p['student_parameters'] / 1e6:.2f} M of {p['teacher_parameters'] / 1e6:.2f} M | "
                    f"{p['student_flops'] / 1e9:.2f} G of {p['teacher_flops'] / 1e9:.2f} G | {p['held_out_pooled_cosine']:.4f} ({p['held_out_sequences']}) | "
                    f"{f['sentences']} ({f['source']} hypotheses) | "
                    f"{f['mean_cosine']:.4f} ± {f['std_cosine']:.4f} | {f['p05_cosine']:.4f} | {f['min_cosine']:.4f} |")
    return "\n".join(rows)


def task_table():
    t = load("distill-minilm-task.json")
    if not t:
        return "Task-specific student: missing."
    return "\n".join([
        "| model | parameters | FLOPs / 128-token sequence | dev accuracy (%) | macro-F1 |",
        "|---|---|---|---|---|",
        f"| teacher (hd-finetune, seed 0) | {t['teacher_parameters'] / 1e6:.2f} M | {t['teacher_flops'] / 1e9:.2f} G | "
        f"{100 * t['teacher']['accuracy']:.2f} | {t['teacher']['macro_f1']:.4f} |",
        f"| student {t['widths']} | {t['student_parameters'] / 1e6:.2f} M | {t['student_flops'] / 1e9:.2f} G | "
        f"{100 * t['student']['accuracy']:.2f} | {t['student']['macro_f1']:.4f} |"])


def quant_table():
    q = load("quant-classifier-minilm-rt.json")
    if not q:
        return "Precision: missing."
    rows = ["| precision | dev accuracy (%) | macro-F1 | same label as fp32 |", "|---|---|---|---|"]
    for p in ("fp32", "bf16", "int8"):
        r = q[p]
        rows.append(f"| {p} | {100 * r['accuracy']:.2f} | {r['macro_f1']:.4f} | {100 * r['label_agreement_with_fp32']:.2f} % of {r['examples']} |")
    return "\n".join(rows)


def section():
    return "\n\n".join([BEGIN, "### Fine-tuning all-MiniLM-L6-v2 on rt_polarity (hd-finetune vs transformers)", finetune_table(),
                        speed_table(), "### A MiniLM student for sentence embeddings (`--alpha-pooled`)", pooled_table(),
                        "### Task-specific distillation of the fine-tuned MiniLM classifier", task_table(),
                        "### The classifier at bf16 and int8 (issue 15's classifier accuracy)", quant_table(), END])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--print", action="store_true")
    a = p.parse_args()
    text = section()
    if a.print:
        print(text)
        return
    replace_section(os.path.join(ROOT, "docs/RESULTS.md"), BEGIN, END, text)


if __name__ == "__main__":
    main()
