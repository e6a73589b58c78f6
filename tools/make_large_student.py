"""Writes a BERT-base-sized student.ckpt for measuring hd-export's memory (docs/PERFORMANCE.md).

Usage: make_large_student.py CANONICAL.safetensors OUT.ckpt [--ffn-keep 2304]

The weights are the canonical model's; each layer's FFN keeps its first --ffn-keep neurons (the rows
of FFN-in and its bias, the columns of FFN-out: the only tensors that unit couples), every other
mask keeps everything, and Adam moments of every trainable tensor are zero, so the file has the
size of a real training run's (weights + two moments) and hd-export reads it as it would one.
"""
import argparse
import json

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("canonical")
    ap.add_argument("out")
    ap.add_argument("--ffn-keep", type=int, default=2304)
    args = ap.parse_args()
    with safe_open(args.canonical, "np") as f:
        meta = f.metadata()
        weights = {k: f.get_tensor(k).astype(np.float32) for k in f.keys()}
    config = json.loads(meta["hd.config"])
    d, layers, ffn = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    tensors = dict(weights)
    for layer in range(layers):
        p = f"bert.encoder.layer.{layer}."
        tensors[p + "intermediate.dense.weight"][args.ffn_keep:, :] = 0
        tensors[p + "intermediate.dense.bias"][args.ffn_keep:] = 0
        tensors[p + "output.dense.weight"][:, args.ffn_keep:] = 0
        keep = np.zeros(ffn, dtype=np.int32)
        keep[: args.ffn_keep] = 1
        tensors[f"hd.mask.layer.{layer}.ffn"] = keep
        tensors[f"hd.mask.layer.{layer}.query_key"] = np.ones(d, dtype=np.int32)
        tensors[f"hd.mask.layer.{layer}.value"] = np.ones(d, dtype=np.int32)
    tensors["hd.mask.hidden"] = np.ones(d, dtype=np.int32)
    frozen = {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    for name, t in weights.items():
        if name not in frozen:
            tensors["hd.adam.m." + name] = np.zeros_like(t)
            tensors["hd.adam.v." + name] = np.zeros_like(t)
    metadata = {"hd.format": "1", "hd.kind": "student", "hd.config": meta["hd.config"], "hd.step": "1",
                "hd.rng": " ".join(["0000000000000001"] * 4),
                "hd.data": json.dumps({"epoch": 0, "position": 0, "seed": "0000000000000000"}),
                "hd.recipe": "{}"}
    if "hd.vocab" in meta:
        metadata["hd.vocab"] = meta["hd.vocab"]
    assert heads > 0
    save_file(tensors, args.out, metadata=metadata)


if __name__ == "__main__":
    main()
