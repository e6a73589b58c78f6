#!/usr/bin/env python3
"""HDTasks' stratified train/dev split, reproduced bit for bit in pure Python (no dependencies).

The algorithm is documented on `StratifiedSplit` (Sources/HDTasks/StratifiedSplit.swift):
xoshiro256** seeded through SplitMix64; per class id in increasing order, the example indices of that
class shuffled by Fisher-Yates with Lemire's unbounded-rejection draw; k = floor(fraction*n + 0.5)
clamped to 1..n-1 when n >= 2 (0 when n == 1) go to dev; both parts returned sorted.
Class ids follow `LabelSet`: labels stripped (str.strip), distinct labels sorted numerically when
every one is a decimal integer (ties by UTF-8 bytes), else by UTF-8 bytes (= Python's str order).

usage:
  task_split.py FILE [--label-column label] [--fraction 0.1] [--seed 0]   print {"train": [...], "dev": [...]}
  task_split.py FILE --out-dir DIR [...]   write DIR/train.tsv and DIR/dev.tsv (TSV input): the files
      hd-finetune --dev-fraction F --split-seed S would train and evaluate on, for peers (PyTorch) to read
  task_split.py --make-fixture [--out REPO_ROOT]   write fixtures/tasks/split_small.tsv and its expected splits
"""
import argparse
import csv
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hd_random import Xoshiro256  # noqa: E402  (tools/hd_random.py: Random.swift's generators)


INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def sorted_labels(labels):
    labels = list(labels)
    if all(INTEGER.match(l) and -(1 << 63) <= int(l) < (1 << 63) for l in labels):
        return sorted(labels, key=lambda l: (int(l), l.encode()))
    return sorted(labels, key=lambda l: l.encode())


def split(classes, fraction, seed):
    if not 0 < fraction < 1:
        raise ValueError("fraction must be strictly between 0 and 1")
    by_class = {}
    for i, c in enumerate(classes):
        by_class.setdefault(c, []).append(i)
    rng = Xoshiro256(seed)
    train, dev = [], []
    for c in sorted(by_class):
        members = by_class[c]
        n = len(members)
        for j in range(n - 1, 0, -1):
            r = rng.next_int(j + 1)
            members[j], members[r] = members[r], members[j]
        k = int(fraction * n + 0.5)  # floor: the value is non-negative
        k = min(max(k, 1), n - 1) if n >= 2 else 0
        dev += members[:k]
        train += members[k:]
    return sorted(train), sorted(dev)


def read_labels(path, column):
    if path.endswith((".jsonl", ".json")):
        rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
        labels = [r[column] if isinstance(r[column], str) else json.dumps(r[column]) for r in rows]
    else:
        delimiter = "\t" if path.endswith(".tsv") else ","
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if r]
        index = rows[0].index(column)
        labels = [r[index] for r in rows[1:]]
    return [l.strip() for l in labels]


def class_ids(labels):
    order = {label: i for i, label in enumerate(sorted_labels(set(labels)))}
    return [order[l] for l in labels]


FIXTURE_COUNTS = [("0", 17), ("2", 9), ("10", 5), ("7", 1)]
FIXTURE_CASES = [(0, 0.1), (42, 0.25), (42, 0.5), (2**64 - 1, 0.3), (20240611, 0.9)]


def make_fixture(root):
    rng = random.Random(7)
    words = "the a film movie plot is was good bad dull bright , . and but not very".split()
    rows = [(label, i) for label, n in FIXTURE_COUNTS for i in range(n)]
    rng.shuffle(rows)
    out_dir = os.path.join(root, "fixtures", "tasks")
    os.makedirs(out_dir, exist_ok=True)
    tsv = os.path.join(out_dir, "split_small.tsv")
    with open(tsv, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["text", "label"])
        for n, (label, _) in enumerate(rows):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
            if n % 7 == 3:
                text += ' "quoted" \t tab'
            if n % 11 == 5:
                text += "\nsecond line"
            writer.writerow([text, label])
    classes = class_ids(read_labels(tsv, "label"))
    cases = []
    for seed, fraction in FIXTURE_CASES:
        train, dev = split(classes, fraction, seed)
        cases.append({"seed": seed, "fraction": fraction, "train": train, "dev": dev})
    with open(os.path.join(out_dir, "split_small.expected.json"), "w") as f:
        json.dump({"file": "split_small.tsv", "label_column": "label", "cases": cases}, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("--label-column", default="label")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", help="write train.tsv and dev.tsv of a TSV file here")
    ap.add_argument("--make-fixture", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    if args.make_fixture:
        make_fixture(args.out)
        return
    if not args.file:
        ap.error("a task file is needed (or --make-fixture)")
    train, dev = split(class_ids(read_labels(args.file, args.label_column)), args.fraction, args.seed)
    if args.out_dir:
        write_split(args.file, train, dev, args.out_dir)
        print(f"{args.out_dir}: {len(train)} train, {len(dev)} dev")
        return
    json.dump({"train": train, "dev": dev}, sys.stdout)
    print()


def write_split(path, train, dev, out_dir):
    """The rows of a TSV file at `train` and `dev` (indices of its data rows), each with the header."""
    if not path.endswith(".tsv"):
        sys.exit("--out-dir writes TSV: give a .tsv file")
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r]
    os.makedirs(out_dir, exist_ok=True)
    for name, indices in (("train.tsv", train), ("dev.tsv", dev)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(rows[0])
            writer.writerows(rows[1 + i] for i in indices)


if __name__ == "__main__":
    main()
