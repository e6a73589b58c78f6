#!/usr/bin/env python3
"""The peer of hd-finetune: the same recipe in PyTorch + transformers (BertForSequenceClassification),
for accuracy (same split, same seeds count) and speed (examples/s, same threads, same run).
By hand only, never in CI (needs .venv-torch: tools/venv-torch.sh).

    .venv-torch/bin/python tools/finetune_transformers.py MODEL_DIR --train T.tsv --dev D.tsv \
        --seq-len 64 --epochs 2 --batch 32 --lr 5e-5 --seed 0 --threads 2 [--max-steps N] [--json OUT]

Recipe (hd-finetune's defaults): the checkpoint's pooler, a classifier N(0, 0.02), dropout 0.1 where
BERT places it, cross-entropy; AdamW (β 0.9/0.999, ε 1e-6, weight decay 0.01 on matrices only);
warm-up ⌈0.1 · steps⌉ then linear decay; gradient clipping at 1.0; batches shuffled each epoch and
padded to their longest sequence (truncation longest_first at --seq-len). Dev accuracy after every
epoch; the best epoch is reported. examples/s counts training steps only (tokenising excluded).
"""
import argparse
import csv
import json
import math
import sys
import time

import numpy as np
import torch
from transformers import BertForSequenceClassification, BertTokenizerFast

csv.field_size_limit(sys.maxsize)


def read(path, text_column, pair_column, label_column):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return ([r[text_column] for r in rows], [r[pair_column] for r in rows] if pair_column else None,
            [r[label_column] for r in rows])


def sorted_labels(labels):
    distinct = set(labels)
    if all(l.lstrip("-").isdigit() for l in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--train", required=True)
    p.add_argument("--dev", required=True)
    p.add_argument("--text-column", default="text")
    p.add_argument("--pair-column")
    p.add_argument("--label-column", default="label")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (speed runs); 0: all epochs")
    p.add_argument("--matmul", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: the training forward under torch.autocast('cpu', torch.bfloat16), as hd-finetune --matmul bf16")
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    train_text, train_pair, train_labels = read(a.train, a.text_column, a.pair_column, a.label_column)
    dev_text, dev_pair, dev_labels = read(a.dev, a.text_column, a.pair_column, a.label_column)
    labels = sorted_labels(train_labels)
    ids = {l: i for i, l in enumerate(labels)}
    tokenizer = BertTokenizerFast.from_pretrained(a.model_dir)
    model = BertForSequenceClassification.from_pretrained(
        a.model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ids,
        hidden_dropout_prob=a.dropout, attention_probs_dropout_prob=a.dropout, attn_implementation="eager")

    def encode_all(text, pair):
        enc = tokenizer(text, pair, truncation="longest_first", max_length=a.seq_len)
        return enc["input_ids"], enc["token_type_ids"]

    train_ids, train_types = encode_all(train_text, train_pair)
    dev_ids, dev_types = encode_all(dev_text, dev_pair)
    y_train = np.array([ids[l] for l in train_labels])
    y_dev = np.array([ids[l] for l in dev_labels])

    def batch(ids_list, types_list, index):
        L = max(len(ids_list[i]) for i in index)
        x = np.zeros((len(index), L), np.int64)
        t = np.zeros((len(index), L), np.int64)
        m = np.zeros((len(index), L), np.int64)
        for row, i in enumerate(index):
            n = len(ids_list[i])
            x[row, :n], t[row, :n], m[row, :n] = ids_list[i], types_list[i], 1
        return torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(m)

    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, eps=1e-6)
    steps_per_epoch = math.ceil(len(y_train) / a.batch)
    total = a.epochs * steps_per_epoch
    warmup = math.ceil(a.warmup_ratio * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)))

    def evaluate():
        model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for start in range(0, len(y_dev), a.batch):
                index = list(range(start, min(start + a.batch, len(y_dev))))
                x, t, m = batch(dev_ids, dev_types, index)
                out = model(input_ids=x, token_type_ids=t, attention_mask=m, labels=torch.from_numpy(y_dev[index]))
                loss += out.loss.item() * len(index)
                correct += int((out.logits.argmax(-1).numpy() == y_dev[index]).sum())
        model.train()
        return correct / len(y_dev), loss / len(y_dev)

    model.train()
    epochs, step, examples, train_seconds = [], 0, 0, 0.0
    for epoch in range(1, a.epochs + 1):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), a.batch):
            index = order[start:start + a.batch]
            x, t, m = batch(train_ids, train_types, index)
            began = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.matmul == "bf16"):
                out = model(input_ids=x, token_type_ids=t, attention_mask=m, labels=torch.from_numpy(y_train[index]))
            optimizer.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            train_seconds += time.perf_counter() - began
            examples += len(index)
            step += 1
            if a.max_steps and step >= a.max_steps:
                break
        if a.max_steps and step >= a.max_steps:
            break
        accuracy, loss = evaluate()
        epochs.append({"epoch": epoch, "dev_accuracy": accuracy, "dev_loss": loss})
        print(f"epoch {epoch}: dev accuracy {accuracy:.4f} loss {loss:.4f}", file=sys.stderr)
    result = {"tool": "transformers", "seed": a.seed, "threads": a.threads, "steps": step, "examples": examples,
              "train_seconds": train_seconds, "examples_per_second": examples / train_seconds, "epochs": epochs,
              "torch": torch.__version__}
    if epochs:
        best = max(epochs, key=lambda e: (e["dev_accuracy"], -e["epoch"]))
        result["best_epoch"], result["dev_accuracy"] = best["epoch"], best["dev_accuracy"]
    text = json.dumps(result, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
