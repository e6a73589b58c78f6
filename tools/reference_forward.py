#!/usr/bin/env python3
"""Independent float64 numpy BERT forward, the reference the Swift forward is tested against.

    reference_forward.py tiny  [--model-dir fixtures/tiny-bert]   -> fixtures/reference/tiny-bert-forward.npz
    reference_forward.py splade --model-dir DIR                  -> fixtures/reference/splade-tiny-mlm.npz
                         (DIR: the output of `tools/fetch-models.sh splade-tiny`)

Written from the BERT definition (Devlin et al.; Hugging Face's BertForMaskedLM), not from the Swift
code: embeddings (word + position + type, LayerNorm), per layer self-attention with an additive key
mask, residual + LayerNorm, GELU FFN, residual + LayerNorm; MLM head = dense + GELU + LayerNorm, then
the decoder tied to the word embeddings + cls.predictions.bias. Everything in float64; outputs are
stored as float32 (what the Swift side computes in). Needs numpy and safetensors only.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "fixtures", "reference")

# tiny-bert inputs: three sequences of length 9 with right padding (id 0, mask 0) and both token
# types (a sentence pair in sequence 0). Ids index fixtures/tiny-bert/vocab.txt (100 entries).
TINY_IDS = [
    [3, 25, 26, 45, 4, 60, 33, 71, 4],
    [3, 7, 80, 99, 12, 4, 0, 0, 0],
    [3, 40, 4, 0, 0, 0, 0, 0, 0],
]
TINY_TYPES = [
    [0, 0, 0, 0, 0, 1, 1, 1, 1],
    [0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0],
]

# splade-tiny inputs: bert-base-uncased WordPiece ids (HF tokenizers) of
#   "The capital of France is [MASK]."
#   "She walked to the market to buy some fresh bread."
#   "A quick brown fox jumps over the lazy dog!"
SPLADE_IDS = [
    [101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102],
    [101, 2016, 2939, 2000, 1996, 3006, 2000, 4965, 2070, 4840, 7852, 1012, 102],
    [101, 1037, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 999, 102],
]
# (sequence, position) pairs whose full-vocabulary logits are stored (the [MASK], and a few words).
SPLADE_POSITIONS = [(0, 6), (1, 5), (1, 12), (2, 9)]


def load_weights(path):
    """safetensors -> dict of float64 arrays under canonical HF names (old gamma/beta accepted)."""
    out = {}
    for name, value in load_file(path).items():
        if name.endswith("LayerNorm.gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith("LayerNorm.beta"):
            name = name[: -len("beta")] + "bias"
        out[name] = value.astype(np.float64)
    return out


def gelu(x, kind):
    if kind == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if kind in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(f"hidden_act {kind!r} not supported")


def layer_norm(x, w, b, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def dense(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def forward(w, cfg, ids, types, mask, attention_scale=None):
    """Returns (hidden states [layers+1 × B×L×d], attention probs [layers × B×H×L×L])."""
    ids, types, mask = np.asarray(ids), np.asarray(types), np.asarray(mask, dtype=np.float64)
    B, L = ids.shape
    eps, act = cfg["layer_norm_eps"], cfg.get("hidden_act", "gelu")
    e = "bert.embeddings."
    x = (w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][np.arange(L)][None]
         + w[e + "token_type_embeddings.weight"][types])
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)
    hidden, probs_all = [x], []
    additive = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min  # [B, 1, 1, L]
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        heads = cfg["num_attention_heads"]
        width = w[p + "attention.self.query.weight"].shape[0]
        size = width // heads
        scale = attention_scale if attention_scale is not None else 1.0 / math.sqrt(size)

        def split(t):  # [B, L, H*S] -> [B, H, L, S]
            return t.reshape(B, L, heads, size).transpose(0, 2, 1, 3)

        q = split(dense(x, w, p + "attention.self.query"))
        k = split(dense(x, w, p + "attention.self.key"))
        v = split(dense(x, w, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) * scale + additive
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(B, L, width)
        h = layer_norm(dense(context, w, p + "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        f = gelu(dense(h, w, p + "intermediate.dense"), act)
        x = layer_norm(dense(f, w, p + "output.dense") + h,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        hidden.append(x)
        probs_all.append(probs)
    return hidden, probs_all


def mlm_logits(w, cfg, h):
    t = gelu(dense(h, w, "cls.predictions.transform.dense"), cfg.get("hidden_act", "gelu"))
    t = layer_norm(t, w["cls.predictions.transform.LayerNorm.weight"],
                   w["cls.predictions.transform.LayerNorm.bias"], cfg["layer_norm_eps"])
    decoder = w.get("cls.predictions.decoder.weight", w["bert.embeddings.word_embeddings.weight"])
    return t @ decoder.T + w["cls.predictions.bias"]


def padded(rows, pad=0):
    n = max(len(r) for r in rows)
    return [r + [pad] * (n - len(r)) for r in rows], [[1] * len(r) + [0] * (n - len(r)) for r in rows]


def f32(x):
    return np.asarray(x, dtype=np.float32)


def save(path, arrays):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(path, file=sys.stderr)


def tiny(model_dir):
    w = load_weights(os.path.join(model_dir, "model.safetensors"))
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    ids, types = np.array(TINY_IDS), np.array(TINY_TYPES)
    mask = (ids != 0).astype(np.int64)
    mask[:, 0] = 1
    hidden, probs = forward(w, cfg, ids, types, mask)
    out = {"input_ids": ids.astype(np.int64), "token_type_ids": types.astype(np.int64),
           "attention_mask": mask, "mlm_logits": f32(mlm_logits(w, cfg, hidden[-1]))}
    for i, h in enumerate(hidden):
        out[f"hidden_state_{i}"] = f32(h)
    for i, p in enumerate(probs):
        out[f"attention_{i}"] = f32(p)
    last, m = hidden[-1], mask.astype(np.float64)[:, :, None]
    mean = (last * m).sum(axis=1) / m.sum(axis=1)
    out["mean_pooled_normalized"] = f32(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
    out["pooler_output"] = f32(np.tanh(dense(last[:, 0], w, "bert.pooler.dense")))
    # A variant config: the tanh GELU and an explicit attention scale (what a pruned student keeps).
    variant = dict(cfg, hidden_act="gelu_new")
    vh, _ = forward(w, variant, ids, types, mask, attention_scale=0.3)
    out["variant_last_hidden_state"] = f32(vh[-1])
    out["variant_mlm_logits"] = f32(mlm_logits(w, variant, vh[-1]))
    save(os.path.join(OUT_DIR, "tiny-bert-forward.npz"), out)


def splade(model_dir):
    w = load_weights(os.path.join(model_dir, "model.safetensors"))
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    ids, mask = padded(SPLADE_IDS)
    ids, mask = np.array(ids), np.array(mask)
    types = np.zeros_like(ids)
    hidden, _ = forward(w, cfg, ids, types, mask)
    positions = np.array(SPLADE_POSITIONS, dtype=np.int64)
    rows = hidden[-1][positions[:, 0], positions[:, 1]]
    save(os.path.join(OUT_DIR, "splade-tiny-mlm.npz"), {
        "input_ids": ids.astype(np.int64), "token_type_ids": types.astype(np.int64), "attention_mask": mask,
        "last_hidden_state": f32(hidden[-1]), "positions": positions, "mlm_logits": f32(mlm_logits(w, cfg, rows)),
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["tiny", "splade"])
    ap.add_argument("--model-dir")
    args = ap.parse_args()
    if args.which == "tiny":
        tiny(args.model_dir or os.path.join(REPO, "fixtures", "tiny-bert"))
    else:
        if not args.model_dir:
            ap.error("splade needs --model-dir (the directory tools/fetch-models.sh splade-tiny prints)")
        splade(args.model_dir)


if __name__ == "__main__":
    main()
