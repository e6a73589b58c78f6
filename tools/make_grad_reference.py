#!/usr/bin/env python3
"""PyTorch autograd gradients of the tiny fixture BERT, the reference for Swift's backward.

By hand only, never in CI (needs PyTorch + transformers: tools/venv-torch.sh):

    .venv-torch/bin/python tools/make_grad_reference.py
    python3 tools/make_fixtures.py --manifest-only

Writes fixtures/reference/tiny-bert-grads.npz: the model (fixtures/tiny-bert, BertForMaskedLM,
tied decoder, exact GELU, eager attention) in float64 on a fixed batch with padding and two token
types; and tiny-bert-grads-untied-tanh.npz: the same weights with hidden_act "gelu_new" and an
untied decoder (word embeddings + fixed noise, stored as decoder_weight), the other code paths.
The scalar loss exercises every way a gradient enters the Swift backward:

    L = mean CE(MLM logits at rows, labels)              -> dL/dlogits at selected rows
      + c0 * sum(h0^2) + c1 * sum(h1^2)                   -> embedding / hidden-state injections
      + sum(h_last * R)                                   -> last-hidden-state injection
      + sum_l sum(A_l * G_l)                              -> attention-probability injections

with h_k = hidden state k (0 = embeddings output), A_l = attention probabilities of layer l, and
R, G_l fixed random tensors stored in the file (as float32, used as those exact values here).
Stored: the inputs, rows, labels, c0, c1, R, G_l, the loss and grad.<canonical name> for every
trainable tensor (float32, from float64).
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import BertConfig, BertForMaskedLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "fixtures/reference"))
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    write(os.path.join(args.out_dir, "tiny-bert-grads.npz"), untied_tanh=False)
    write(os.path.join(args.out_dir, "tiny-bert-grads-untied-tanh.npz"), untied_tanh=True)


def write(path, untied_tanh):
    model_dir = os.path.join(ROOT, "fixtures/tiny-bert")
    with open(os.path.join(model_dir, "config.json")) as f:
        settings = json.load(f)
    if untied_tanh:
        settings.update(hidden_act="gelu_new", tie_word_embeddings=False)
    config = BertConfig(**settings, attn_implementation="eager")
    model = BertForMaskedLM(config)
    weights = {k: torch.from_numpy(v) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    rng = np.random.default_rng(20261121)
    extra = {}
    if untied_tanh:
        word = weights["bert.embeddings.word_embeddings.weight"].numpy()
        decoder = (word + 0.05 * rng.standard_normal(word.shape)).astype(np.float32)
        weights["cls.predictions.decoder.weight"] = torch.from_numpy(decoder)
        extra["decoder_weight"] = decoder
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert all(k.startswith("bert.pooler.") for k in unexpected), unexpected  # BertForMaskedLM has no pooler
    assert all(k.startswith("cls.predictions.decoder") or k.endswith("position_ids") for k in missing), missing
    # Untied, transformers leaves decoder.bias a parameter of its own (unloaded); the checkpoint's
    # cls.predictions.bias is the decoder's bias, as it is when tied.
    model.cls.predictions.decoder.bias = model.cls.predictions.bias
    tied = model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert tied != untied_tanh
    model = model.double().eval()

    B, L, H, d, V = 3, 10, config.num_attention_heads, config.hidden_size, config.vocab_size
    input_ids = rng.integers(1, V, size=(B, L)).astype(np.int64)
    token_type_ids = np.zeros((B, L), np.int64)
    token_type_ids[0, 5:] = 1
    attention_mask = np.ones((B, L), np.int64)
    attention_mask[2, 7:] = 0
    input_ids[2, 7:] = 0
    # A repeated id (in two rows) checks that the word table's gradient sums both uses.
    input_ids[1, 3] = input_ids[0, 2]
    rows = np.array([1, 4, 12, 13, 18, 21, 25], np.int64)
    labels = rng.integers(0, V, size=rows.shape).astype(np.int64)
    c0, c1 = 0.05, 0.03
    R = rng.standard_normal((B, L, d)).astype(np.float32) * 0.1
    G = [rng.standard_normal((B, H, L, L)).astype(np.float32) for _ in range(config.num_hidden_layers)]

    out = model(input_ids=torch.from_numpy(input_ids), token_type_ids=torch.from_numpy(token_type_ids),
                attention_mask=torch.from_numpy(attention_mask), output_hidden_states=True, output_attentions=True)
    logits = out.logits.reshape(B * L, V)[torch.from_numpy(rows)]
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    loss = loss + c0 * (out.hidden_states[0] ** 2).sum() + c1 * (out.hidden_states[1] ** 2).sum()
    loss = loss + (out.hidden_states[-1] * torch.from_numpy(R).double()).sum()
    for a, g in zip(out.attentions, G):
        loss = loss + (a * torch.from_numpy(g).double()).sum()
    model.zero_grad()
    loss.backward()

    arrays = extra | {
        "input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
        "mlm_rows": rows, "mlm_labels": labels, "hidden_coefficients": np.array([c0, c1], np.float32),
        "last_hidden_weight": R, "loss": np.array(loss.item(), np.float32),
    }
    for i, g in enumerate(G):
        arrays[f"attention_weight_{i}"] = g
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    if "cls.predictions.bias" not in grads:
        grads["cls.predictions.bias"] = grads.pop("cls.predictions.decoder.bias")
    if not untied_tanh:
        grads.pop("cls.predictions.decoder.weight", None)  # the same tensor as the word embeddings
    for name, g in grads.items():
        arrays[f"grad.{name}"] = g.numpy().astype(np.float32)
    np.savez(path, **arrays)
    print(f"wrote {path}: loss {loss.item():.6f}, {len(grads)} gradients")


if __name__ == "__main__":
    main()
