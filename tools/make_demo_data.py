#!/usr/bin/env python3
"""Writes the bundled default data of the README's first command under data/demo/ (committed), from
../shared/data (HD_SHARED_DATA overrides). Standard library only; the output depends only on the inputs.

- northanger-abbey.txt: Jane Austen's *Northanger Abbey* (public domain; Debian r-cran-janeaustenr),
  paragraphs as in the source: the distillation corpus.
- persuasion-sentences.txt: the first 1,000 sentences (12 to 60 words) of Austen's *Persuasion*, one
  per line: held-out text the student never saw, on which its embeddings are compared to the teacher's.
- snli-test-pairs.tsv: the first 1,000 entailment / contradiction pairs of SNLI's test split
  (Bowman et al. 2015, CC BY-SA 4.0; this file is under the same licence): a zero-shot check, the
  cosine of premise and hypothesis ranked for entailment over contradiction (ROC AUC).
"""
import csv
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("HD_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(ROOT, "data", "demo")


def main():
    with open(os.path.join(DATA, "text", "janeausten.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    northanger = lines.index("NORTHANGER ABBEY")
    persuasion = next(i for i in range(northanger, len(lines)) if lines[i].strip() == "Chapter 1" and i > northanger + 100)
    # Persuasion's title block ("Persuasion", "by", "Jane Austen", "(1818)") precedes its first chapter.
    end = max(i for i in range(northanger, persuasion) if lines[i].strip() == "Persuasion")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "northanger-abbey.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines[northanger:end]).strip() + "\n")
    text = " ".join(l.strip() for l in lines[persuasion + 1:] if l.strip())
    sentences = []
    for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", text):
        if 12 <= len(s.split()) <= 60 and not s.startswith("Chapter"):
            sentences.append(s)
        if len(sentences) == 1000:
            break
    with open(os.path.join(OUT, "persuasion-sentences.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(sentences) + "\n")
    csv.field_size_limit(1 << 30)
    with open(os.path.join(DATA, "tasks", "snli_test.tsv"), encoding="utf-8", newline="") as f:
        pairs = [r for r in csv.DictReader(f, delimiter="\t") if r["label"] in ("entailment", "contradiction")][:1000]
    with open(os.path.join(OUT, "snli-test-pairs.tsv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["premise", "hypothesis", "label"])
        for r in pairs:
            w.writerow([r["premise"], r["hypothesis"], r["label"]])


if __name__ == "__main__":
    main()
