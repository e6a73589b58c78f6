#!/usr/bin/env python3
"""Turn the all-mpnet-base-v2 checkpoint into a BERT-base-shaped checkpoint with canonical HF names.

The result is a realistic BERT-base-sized model for latency and I/O benchmarks (12 x 768 x 3072,
a 30k vocabulary, real trained weight statistics), not a faithful MPNet: MPNet's relative attention
bias is dropped and BERT's token-type table is zero, so its outputs differ from MPNet's.

    mpnet_to_bert.py --src DIR --out DIR [--npz]   DIR holds MPNet's model.safetensors, config.json,
                                                   vocab.txt; writes model.safetensors, config.json,
                                                   vocab.txt (+ model.npz, model-deflated.npz)
    mpnet_to_bert.py --npz-only --out DIR          adds the two .npz files to an existing output
"""
import argparse
import json
import os
import re
import shutil
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

# MPNet name (inside encoder.layer.N.) -> BERT name (inside bert.encoder.layer.N.)
LAYER_NAMES = {
    "attention.attn.q.weight": "attention.self.query.weight",
    "attention.attn.q.bias": "attention.self.query.bias",
    "attention.attn.k.weight": "attention.self.key.weight",
    "attention.attn.k.bias": "attention.self.key.bias",
    "attention.attn.v.weight": "attention.self.value.weight",
    "attention.attn.v.bias": "attention.self.value.bias",
    "attention.attn.o.weight": "attention.output.dense.weight",
    "attention.attn.o.bias": "attention.output.dense.bias",
    "attention.LayerNorm.weight": "attention.output.LayerNorm.weight",
    "attention.LayerNorm.bias": "attention.output.LayerNorm.bias",
    "intermediate.dense.weight": "intermediate.dense.weight",
    "intermediate.dense.bias": "intermediate.dense.bias",
    "output.dense.weight": "output.dense.weight",
    "output.dense.bias": "output.dense.bias",
    "output.LayerNorm.weight": "output.LayerNorm.weight",
    "output.LayerNorm.bias": "output.LayerNorm.bias",
}
TOP_NAMES = {
    "embeddings.word_embeddings.weight": "bert.embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight": "bert.embeddings.position_embeddings.weight",
    "embeddings.LayerNorm.weight": "bert.embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias": "bert.embeddings.LayerNorm.bias",
    "pooler.dense.weight": "bert.pooler.dense.weight",
    "pooler.dense.bias": "bert.pooler.dense.bias",
}
# MPNet-only: position_ids is a buffer, the relative bias has no BERT counterpart.
DROPPED = {"embeddings.position_ids", "encoder.relative_attention_bias.weight"}
LAYER_RE = re.compile(r"encoder\.layer\.(\d+)\.(.+)")
TOKEN_TYPES = 2


class ConversionError(Exception):
    pass


def rename(mpnet, src):
    bert = {}
    layers = set()
    for name, value in mpnet.items():
        if name in DROPPED:
            continue
        if name in TOP_NAMES:
            bert[TOP_NAMES[name]] = value
            continue
        match = LAYER_RE.fullmatch(name)
        if match is None or match.group(2) not in LAYER_NAMES:
            raise ConversionError(f"{src}: tensor '{name}': expected an MPNet encoder tensor, found an unknown name")
        index = int(match.group(1))
        layers.add(index)
        bert[f"bert.encoder.layer.{index}.{LAYER_NAMES[match.group(2)]}"] = value
    if layers != set(range(len(layers))):
        raise ConversionError(f"{src}: encoder layers: expected 0..{len(layers) - 1}, found {sorted(layers)}")
    expected = set(TOP_NAMES.values()) | {
        f"bert.encoder.layer.{i}.{n}" for i in range(len(layers)) for n in LAYER_NAMES.values()}
    missing = sorted(expected - bert.keys())
    if missing:
        raise ConversionError(f"{src}: missing tensors (BERT names): {', '.join(missing)}")
    return bert, len(layers)


def check_shapes(bert, layers, src):
    vocab, hidden = bert["bert.embeddings.word_embeddings.weight"].shape
    positions = bert["bert.embeddings.position_embeddings.weight"].shape[0]
    ffn = bert["bert.encoder.layer.0.intermediate.dense.weight"].shape[0]
    want = {"bert.embeddings.position_embeddings.weight": (positions, hidden),
            "bert.embeddings.LayerNorm.weight": (hidden,), "bert.embeddings.LayerNorm.bias": (hidden,),
            "bert.pooler.dense.weight": (hidden, hidden), "bert.pooler.dense.bias": (hidden,)}
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            want[p + part + ".weight"] = (hidden, hidden)
            want[p + part + ".bias"] = (hidden,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            want[p + norm + ".weight"] = (hidden,)
            want[p + norm + ".bias"] = (hidden,)
        want[p + "intermediate.dense.weight"] = (ffn, hidden)
        want[p + "intermediate.dense.bias"] = (ffn,)
        want[p + "output.dense.weight"] = (hidden, ffn)
        want[p + "output.dense.bias"] = (hidden,)
    for name, shape in want.items():
        if tuple(bert[name].shape) != shape:
            raise ConversionError(f"{src}: tensor '{name}': expected shape {list(shape)}, found {list(bert[name].shape)}")
    return vocab, hidden, positions, ffn


def bert_config(mpnet_config, vocab, hidden, layers, positions, ffn):
    heads = mpnet_config.get("num_attention_heads")
    if not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise ConversionError(f"config.json: num_attention_heads: expected a divisor of {hidden}, found {heads!r}")
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": positions,
        "type_vocab_size": TOKEN_TYPES,
        "initializer_range": 0.02,
        "layer_norm_eps": float(mpnet_config.get("layer_norm_eps", 1e-5)),
        "pad_token_id": int(mpnet_config.get("pad_token_id", 0)),
        "position_embedding_type": "absolute",
        "hd_note": "sentence-transformers/all-mpnet-base-v2 weights under BERT names (tools/mpnet_to_bert.py); "
                   "relative attention bias dropped, token types zero: a BERT-base-sized benchmark model, "
                   "not a faithful MPNet",
    }


def write_atomically(path, write):
    # The temp name keeps the extension: np.savez appends ".npz" to names that lack it.
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # the safetensors writer creates 0600 files; these are shared artefacts
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_npz(out):
    tensors = load_file(os.path.join(out, "model.safetensors"))
    write_atomically(os.path.join(out, "model.npz"), lambda p: np.savez(p, **tensors))
    write_atomically(os.path.join(out, "model-deflated.npz"), lambda p: np.savez_compressed(p, **tensors))


def convert(src, out):
    model_path = os.path.join(src, "model.safetensors")
    with open(os.path.join(src, "config.json"), encoding="utf-8") as f:
        mpnet_config = json.load(f)
    bert, layers = rename(load_file(model_path), model_path)
    vocab, hidden, positions, ffn = check_shapes(bert, layers, model_path)
    if "bert.embeddings.token_type_embeddings.weight" not in bert:
        bert["bert.embeddings.token_type_embeddings.weight"] = np.zeros((TOKEN_TYPES, hidden), np.float32)
    bert = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in bert.items()}
    config = bert_config(mpnet_config, vocab, hidden, layers, positions, ffn)

    os.makedirs(out, exist_ok=True)
    write_atomically(os.path.join(out, "model.safetensors"),
                     lambda p: save_file(bert, p, metadata={"format": "pt"}))
    write_atomically(os.path.join(out, "config.json"),
                     lambda p: write_text(p, json.dumps(config, indent=2) + "\n"))
    write_atomically(os.path.join(out, "vocab.txt"),
                     lambda p: shutil.copyfile(os.path.join(src, "vocab.txt"), p))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="directory with the MPNet model.safetensors, config.json, vocab.txt")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--npz", action="store_true", help="also write model.npz and model-deflated.npz")
    parser.add_argument("--npz-only", action="store_true", help="only add the .npz files to --out")
    args = parser.parse_args()
    try:
        if not args.npz_only:
            if args.src is None:
                parser.error("--src is required unless --npz-only")
            convert(args.src, args.out)
        if args.npz or args.npz_only:
            write_npz(args.out)
    except (ConversionError, OSError, ValueError) as error:
        print(f"mpnet_to_bert.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
