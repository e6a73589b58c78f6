#!/usr/bin/env python3
"""Check that transformers loads an `hd-convert --to hf-dir` / `hd-export --hf-dir` output and
computes what the source does.

    .venv-torch/bin/python tools/check_hf_dir.py OUT_DIR SOURCE_DIR

Both directories are Hugging Face layouts (config.json, model weights, vocab.txt). Loads each with
BertForMaskedLM (BertModel when there is no MLM head), runs the same sentences, prints the largest
absolute difference of the outputs and exits 1 if it is above 1e-5. When OUT_DIR's config.json names
`BertForSequenceClassification`, both are loaded with AutoModelForSequenceClassification instead:
loading OUT_DIR must report no missing and no unexpected weights, its id2label must equal the
source's, and the logits (on sentences and a sentence pair) are compared. By hand only: needs torch.

    e.g. hd-convert fixtures/tiny-classifier --to hf-dir -o /tmp/cls-hf
         .venv-torch/bin/python tools/check_hf_dir.py /tmp/cls-hf fixtures/tiny-classifier
"""
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, BertForMaskedLM, BertModel, BertTokenizer

SENTENCES = ["the cat sat on the [MASK] .", "homodistil prunes a bert while it distils .", "paris is the capital of [MASK] ."]
PAIRS = ["a dog sat on the mat .", "it was bad .", "they were at home ."]


def load(path):
    try:
        return BertForMaskedLM.from_pretrained(path).eval(), "logits"
    except Exception:
        return BertModel.from_pretrained(path).eval(), "last_hidden_state"


def is_classifier(path):
    with open(f"{path}/config.json", encoding="utf-8") as f:
        return "BertForSequenceClassification" in json.load(f).get("architectures", [])


def check_classifier(out_dir, source_dir):
    ours, info = AutoModelForSequenceClassification.from_pretrained(out_dir, output_loading_info=True)
    theirs = AutoModelForSequenceClassification.from_pretrained(source_dir)
    ours.eval()
    theirs.eval()
    problems = [f"{kind}: {info[kind]}" for kind in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(kind)]
    if ours.config.id2label != theirs.config.id2label:
        problems.append(f"id2label {ours.config.id2label} differs from the source's {theirs.config.id2label}")
    tokenizer = BertTokenizer(f"{out_dir}/vocab.txt")
    diff = 0.0
    with torch.no_grad():
        for batch in (tokenizer(SENTENCES, padding=True, return_tensors="pt"),
                      tokenizer(SENTENCES, PAIRS, padding=True, return_tensors="pt")):
            diff = max(diff, float((ours(**batch).logits - theirs(**batch).logits).abs().max()))
    print(f"{out_dir}: AutoModelForSequenceClassification loads it ({type(ours).__name__}, labels "
          f"{[ours.config.id2label[i] for i in range(ours.config.num_labels)]}, problem_type {ours.config.problem_type}); "
          f"max |difference| of the logits vs {source_dir}: {diff:.3g}")
    for p in problems:
        print(f"  problem: {p}")
    return diff <= 1e-5 and not problems


def main():
    out_dir, source_dir = sys.argv[1], sys.argv[2]
    if is_classifier(out_dir):
        sys.exit(0 if check_classifier(out_dir, source_dir) else 1)
    ours, key = load(out_dir)
    theirs, _ = load(source_dir)
    batch = BertTokenizer(f"{out_dir}/vocab.txt")(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        diff = float((getattr(ours(**batch), key) - getattr(theirs(**batch), key)).abs().max())
    print(f"{out_dir}: transformers loads it; max |difference| of {key} vs {source_dir}: {diff:.3g}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    main()
