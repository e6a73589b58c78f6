#!/usr/bin/env python3
"""Check that transformers loads an `hd-convert --to hf-dir` output and computes what the source does.

    .venv-torch/bin/python tools/check_hf_dir.py OUT_DIR SOURCE_DIR

Both directories are Hugging Face layouts (config.json, model weights, vocab.txt). Loads each with
BertForMaskedLM (BertModel when there is no MLM head), runs the same sentences, prints the largest
absolute difference of the outputs and exits 1 if it is above 1e-5. By hand only: needs torch.
"""
import sys

import torch
from transformers import BertForMaskedLM, BertModel, BertTokenizer

SENTENCES = ["the cat sat on the [MASK] .", "homodistil prunes a bert while it distils .", "paris is the capital of [MASK] ."]


def load(path):
    try:
        return BertForMaskedLM.from_pretrained(path).eval(), "logits"
    except Exception:
        return BertModel.from_pretrained(path).eval(), "last_hidden_state"


def main():
    out_dir, source_dir = sys.argv[1], sys.argv[2]
    ours, key = load(out_dir)
    theirs, _ = load(source_dir)
    batch = BertTokenizer(f"{out_dir}/vocab.txt")(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        diff = float((getattr(ours(**batch), key) - getattr(theirs(**batch), key)).abs().max())
    print(f"{out_dir}: transformers loads it; max |difference| of {key} vs {source_dir}: {diff:.3g}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    main()
