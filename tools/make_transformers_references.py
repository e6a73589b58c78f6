#!/usr/bin/env python3
"""PyTorch/transformers reference outputs for real checkpoints, written to fixtures/reference/.

    make_transformers_references.py --splade DIR --minilm DIR
        DIR: what `tools/fetch-models.sh splade-tiny` / `tools/fetch-models.sh minilm` print.
        Run with the torch venv: .venv-torch/bin/python (tools/venv-torch.sh makes it).

Writes
  splade-tiny-transformers.npz  BertForMaskedLM on SENTENCES: input_ids, token_type_ids, attention_mask
                                [N × L]; per token the 10 largest logits (top_ids, top_values [N × L × 10])
                                and the logits of a fixed sample of 256 vocabulary ids (vocab_sample,
                                sample_logits [N × L × 256]) — full logits for every token would be ~30 MB.
  minilm-transformers.npz       BertModel on SENTENCES: mean over the attention mask of the last hidden
                                state, L2-normalised (sentence-transformers' all-MiniLM-L6-v2 recipe),
                                embeddings [N × 384], plus the same input arrays.
Tokenisation is transformers' BertTokenizer from the model directory, so the Swift tests need no tokenizer.
"""
import argparse
import os
import sys

import numpy as np
import torch
from transformers import BertForMaskedLM, BertModel, BertTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "fixtures", "reference")

SENTENCES = [
    "The capital of France is [MASK].",
    "She walked to the market to buy some fresh bread.",
    "A quick brown fox jumps over the lazy dog!",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Call me Ishmael.",
    "The film was a complete waste of time; the plot made no sense at all.",
    "I loved every minute of this movie, the acting was superb.",
    "Shares in the company fell sharply after the announcement on Tuesday.",
    "The government announced new measures to tackle rising energy prices.",
    "He scored twice in the second half to secure the championship.",
    "Water boils at 100 degrees Celsius at sea level.",
    "What time does the next train to London leave?",
    "Photosynthesis converts light energy into chemical energy.",
    "The [MASK] barked loudly at the postman.",
    "Mr. Darcy bowed, and Elizabeth turned away without a word.",
    "Don't forget to bring your umbrella; it's going to rain.",
    "Café au lait, naïve résumé — accents are stripped by the uncased tokenizer.",
    "1984 was published in 1949 by George Orwell.",
    "The quick brown fox",
    "Neural networks can be pruned without losing much accuracy.",
    "Why is the sky blue?",
    "Paris is the [MASK] of France.",
]
SAMPLE_SEED = 20261121


def encode(model_dir):
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    return enc, {k: enc[k].numpy().astype(np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}


@torch.no_grad()
def splade(model_dir):
    model = BertForMaskedLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    enc, arrays = encode(model_dir)
    logits = model(**enc).logits.double().numpy()  # [N, L, V]
    top = np.argsort(-logits, axis=-1, kind="stable")[..., :10]
    sample = np.sort(np.random.default_rng(SAMPLE_SEED).choice(logits.shape[-1], 256, replace=False)).astype(np.int64)
    arrays.update(top_ids=top.astype(np.int64),
                  top_values=np.take_along_axis(logits, top, axis=-1).astype(np.float32),
                  vocab_sample=sample, sample_logits=logits[..., sample].astype(np.float32))
    save("splade-tiny-transformers.npz", arrays)


@torch.no_grad()
def minilm(model_dir):
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager", add_pooling_layer=False).eval()
    enc, arrays = encode(model_dir)
    hidden = model(**enc).last_hidden_state.double()
    mask = enc["attention_mask"].unsqueeze(-1).double()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    arrays["embeddings"] = torch.nn.functional.normalize(mean, dim=-1).numpy().astype(np.float32)
    save("minilm-transformers.npz", arrays)


def save(name, arrays):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name)
    np.savez_compressed(path, **arrays)
    print(path, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splade", help="splade-tiny model directory")
    ap.add_argument("--minilm", help="all-MiniLM-L6-v2 model directory")
    args = ap.parse_args()
    if not (args.splade or args.minilm):
        ap.error("give --splade DIR and/or --minilm DIR")
    torch.manual_seed(0)
    if args.splade:
        splade(args.splade)
    if args.minilm:
        minilm(args.minilm)


if __name__ == "__main__":
    main()
