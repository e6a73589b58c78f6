#!/usr/bin/env python3
"""transformers' BertForSequenceClassification loss and autograd gradients on the tiny fixture BERT,
the reference for Swift's classifier head (forward and backward).

By hand only, never in CI (needs PyTorch + transformers: tools/venv-torch.sh):

    .venv-torch/bin/python tools/make_classifier_grad_reference.py
    python3 tools/make_fixtures.py --manifest-only

Writes fixtures/reference/tiny-bert-classifier-grads.npz (3 labels, cross-entropy) and
tiny-bert-regression-grads.npz (one output, MSE): the fixture's encoder and pooler
(fixtures/tiny-bert) with a classifier drawn from a fixed seed (stored as classifier_weight /
classifier_bias), float64, eval mode (dropout off), one batch with padding and two token types.
Stored: the inputs, labels (or targets), the logits, the loss and grad.<name> for every parameter
of BertForSequenceClassification (float32 from float64).
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import BertConfig, BertForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "fixtures/reference"))
    args = parser.parse_args()
    write(os.path.join(args.out_dir, "tiny-bert-classifier-grads.npz"), labels=3)
    write(os.path.join(args.out_dir, "tiny-bert-regression-grads.npz"), labels=1)


def write(path, labels):
    model_dir = os.path.join(ROOT, "fixtures/tiny-bert")
    with open(os.path.join(model_dir, "config.json")) as f:
        settings = json.load(f)
    settings["architectures"] = ["BertForSequenceClassification"]
    settings["problem_type"] = "regression" if labels == 1 else "single_label_classification"
    config = BertConfig(**settings, num_labels=labels, attn_implementation="eager")
    model = BertForSequenceClassification(config)
    rng = np.random.default_rng(20261206 + labels)
    d = config.hidden_size
    classifier_weight = (0.2 * rng.standard_normal((labels, d))).astype(np.float32)
    classifier_bias = (0.1 * rng.standard_normal(labels)).astype(np.float32)
    weights = {"bert." + k[len("bert."):] if k.startswith("bert.") else k: torch.from_numpy(v)
               for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items() if not k.startswith("cls.")}
    weights["classifier.weight"] = torch.from_numpy(classifier_weight)
    weights["classifier.bias"] = torch.from_numpy(classifier_bias)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected, unexpected
    assert all(k.endswith("position_ids") for k in missing), missing
    model = model.double().eval()

    B, L, V = 4, 9, config.vocab_size
    input_ids = rng.integers(1, V, size=(B, L)).astype(np.int64)
    token_type_ids = np.zeros((B, L), np.int64)
    token_type_ids[0, 4:] = 1
    token_type_ids[3, 5:7] = 1
    attention_mask = np.ones((B, L), np.int64)
    attention_mask[1, 6:] = 0
    attention_mask[3, 7:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids[attention_mask == 0] = 0
    arrays = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
              "classifier_weight": classifier_weight, "classifier_bias": classifier_bias}
    if labels == 1:
        targets = rng.standard_normal(B).astype(np.float32)
        arrays["targets"] = targets
        label_tensor = torch.from_numpy(targets).double()
    else:
        gold = rng.integers(0, labels, size=B).astype(np.int64)
        arrays["labels"] = gold
        label_tensor = torch.from_numpy(gold)
    out = model(input_ids=torch.from_numpy(input_ids), token_type_ids=torch.from_numpy(token_type_ids),
                attention_mask=torch.from_numpy(attention_mask), labels=label_tensor)
    model.zero_grad()
    out.loss.backward()
    arrays["logits"] = out.logits.detach().numpy().astype(np.float32)
    arrays["loss"] = np.array(out.loss.item(), np.float32)
    for name, p in model.named_parameters():
        arrays[f"grad.{name}"] = p.grad.numpy().astype(np.float32)
    np.savez(path, **arrays)
    print(f"wrote {path}: loss {out.loss.item():.6f}")


if __name__ == "__main__":
    main()
