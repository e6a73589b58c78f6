#!/usr/bin/env python3
"""A fixed, stratified train/dev split of a labelled TSV, written as two TSV files that both
hd-finetune (--train/--dev) and the transformers peer (tools/finetune_transformers.py) read, so
the two are compared on the same examples.

    python3 tools/split_task.py ../shared/data/tasks/rt_polarity.tsv --dev-fraction 0.1 --seed 0 \
        --out-dir .cache/tasks/rt_polarity

Per label (labels in sorted order), the rows are shuffled with numpy's PCG64 seeded by `seed` and
the first round(fraction * n) go to dev; both files keep the input's row order otherwise. Only the
standard library's csv module and numpy are used.
"""
import argparse
import csv
import os
import sys

import numpy as np

csv.field_size_limit(sys.maxsize)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-column", default="label")
    p.add_argument("--limit", type=int, default=0, help="keep only the first N rows (0: all)")
    p.add_argument("--out-dir", required=True)
    a = p.parse_args()
    with open(a.input, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        rows = list(reader)
    if a.limit:
        rows = rows[:a.limit]
    column = header.index(a.label_column)
    rng = np.random.default_rng(a.seed)
    dev = set()
    for label in sorted({r[column] for r in rows}):
        members = [i for i, r in enumerate(rows) if r[column] == label]
        rng.shuffle(members)
        dev.update(members[:round(a.dev_fraction * len(members))])
    os.makedirs(a.out_dir, exist_ok=True)
    for name, keep in (("train.tsv", lambda i: i not in dev), ("dev.tsv", lambda i: i in dev)):
        with open(os.path.join(a.out_dir, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(header)
            w.writerows(r for i, r in enumerate(rows) if keep(i))
    print(f"{a.out_dir}: {len(rows) - len(dev)} train, {len(dev)} dev")


if __name__ == "__main__":
    main()
