#!/usr/bin/env python3
"""How close a student's sentence embeddings stay to its teacher's: the cosine between the two
models' embeddings (mean pooling over real tokens, `hd-infer embed --json`) of each held-out
sentence, summarised as mean ± std, min and quantiles, written as JSON.

    python3 tools/embedding_fidelity.py TEACHER STUDENT --sentences FILE [--count 1000] [--json OUT]

FILE holds one sentence per line, or is a TSV whose --column is read (distinct values, file order).
Standard library only; the hd-infer binary is found beside this script's repository
(.build/release, else .build/debug) or given with --hd-infer.
"""
import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
csv.field_size_limit(sys.maxsize)


def sentences(path, column, count):
    if path.endswith(".tsv"):
        with open(path, encoding="utf-8", newline="") as f:
            values = [row[column] for row in csv.DictReader(f, delimiter="\t")]
    else:
        with open(path, encoding="utf-8") as f:
            values = [line.strip() for line in f]
    seen, out = set(), []
    for v in values:
        if v and v not in seen:
            seen.add(v)
            out.append(v)
        if len(out) == count:
            break
    return out


def embed(binary, model, texts, threads):
    run = subprocess.run([binary, "embed", model, "-", "--json", "--threads", str(threads)], input="\n".join(texts) + "\n",
                         capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return [r["embedding"] for r in rows]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("teacher")
    p.add_argument("student")
    p.add_argument("--sentences", required=True)
    p.add_argument("--column", default="hypothesis")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hd-infer")
    p.add_argument("--json")
    a = p.parse_args()
    binary = a.hd_infer or next(b for b in (os.path.join(ROOT, ".build/release/hd-infer"), os.path.join(ROOT, ".build/debug/hd-infer"))
                                if os.path.exists(b))
    texts = sentences(a.sentences, a.column, a.count)
    t, s = embed(binary, a.teacher, texts, a.threads), embed(binary, a.student, texts, a.threads)
    if len(t[0]) != len(s[0]):
        sys.exit(f"the teacher's embeddings have {len(t[0])} dimensions, the student's {len(s[0])}: "
                 "their cosine is defined only when the hidden size was not pruned")
    c = sorted(cosine(x, y) for x, y in zip(t, s))
    result = {"teacher": os.path.basename(a.teacher.rstrip("/")), "student": os.path.basename(a.student), "sentences": len(c),
              "source": os.path.basename(a.sentences), "mean_cosine": statistics.fmean(c), "std_cosine": statistics.pstdev(c),
              "min_cosine": c[0], "p05_cosine": c[len(c) // 20], "median_cosine": c[len(c) // 2]}
    text = json.dumps(result, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
