#!/usr/bin/env python3
"""Draws hd-distill JSONL logs: training loss, held-out KL gap to the teacher, and widths against steps.

    python tools/plot_log.py RUN.jsonl [RUN2.jsonl ...] [--labels A B ...] -o curves.png

One line per log in each panel, so a HomoDistil run and its one-shot ablation compare at a glance:
  1. training objective (`loss`) and MLM term (`mlm`, dashed) per step, smoothed over --smooth steps;
  2. held-out KL to the teacher (`kl` of the `eval` records) — the "prediction gap" HomoDistil keeps small;
  3. widths of the masked student (`width_hidden`, `width_ffn` of the train records of a pruning run),
     or the parameter count when --params is given.
Needs matplotlib (not part of tools/venv.sh, which CI uses): `python -m pip install matplotlib`.
"""
import argparse
import json
import sys


def read(path):
    train, evals = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                sys.exit(f"{path}:{number}: not JSON ({error}); expected one hd-distill log object per line")
            kind = record.get("kind")
            if kind == "eval":
                evals.append(record)
            elif kind == "train":
                train.append(record)
    if not train and not evals:
        sys.exit(f"{path}: no records; expected the --log file of an hd-distill run")
    return train, evals


def smooth(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="hd-distill --log files (JSON Lines)")
    parser.add_argument("--labels", nargs="*", help="one label per log (default: file names)")
    parser.add_argument("-o", "--output", required=True, help="PNG to write")
    parser.add_argument("--smooth", type=int, default=10, help="moving-average window of the training curves")
    parser.add_argument("--params", action="store_true", help="third panel: parameter count instead of widths")
    args = parser.parse_args()
    labels = args.labels or args.logs
    if len(labels) != len(args.logs):
        sys.exit(f"--labels: expected {len(args.logs)} labels (one per log), found {len(labels)}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_log.py needs matplotlib: python -m pip install matplotlib")

    fig, (loss_ax, kl_ax, width_ax) = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    for path, label in zip(args.logs, labels):
        train, evals = read(path)
        steps = [r["step"] for r in train]
        line, = loss_ax.plot(steps, smooth([r["loss"] for r in train], args.smooth), label=label)
        if all("mlm" in r for r in train):
            loss_ax.plot(steps, smooth([r["mlm"] for r in train], args.smooth), linestyle="--", color=line.get_color())
        kl = [(r["step"], r["kl"]) for r in evals if r.get("kl") is not None]
        if kl:
            kl_ax.plot(*zip(*kl), marker="o", color=line.get_color(), label=label)
        if args.params:
            sized = [(r["step"], r["parameters"]) for r in train if "parameters" in r]
            if sized:
                width_ax.plot(*zip(*sized), color=line.get_color(), label=label)
        else:
            for key, style in (("width_hidden", "-"), ("width_ffn", ":")):
                sized = [(r["step"], r[key]) for r in train if key in r]
                if sized:
                    width_ax.plot(*zip(*sized), linestyle=style, color=line.get_color(), label=f"{label} {key[6:]}")
    loss_ax.set_ylabel(f"training loss (— total, -- MLM; {args.smooth}-step mean)")
    kl_ax.set_ylabel("held-out KL to the teacher")
    width_ax.set_ylabel("parameters" if args.params else "width (— hidden, ··· FFN)")
    width_ax.set_xlabel("step")
    for ax in (loss_ax, kl_ax, width_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(args.output)


if __name__ == "__main__":
    main()
