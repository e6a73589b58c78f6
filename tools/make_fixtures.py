#!/usr/bin/env python3
"""Generate fixtures/tiny-bert/ (a seeded 2-layer BERT in every layout we read) and fixtures/MANIFEST.

    make_fixtures.py                  regenerate fixtures/tiny-bert/, then rewrite fixtures/MANIFEST
    make_fixtures.py --manifest-only  rewrite fixtures/MANIFEST only (after adding other fixtures)
    make_fixtures.py --check          regenerate into a temp dir and compare byte for byte with
                                      fixtures/tiny-bert/, then verify every file against the MANIFEST

Needs numpy and safetensors only (tools/venv.sh). Output is byte-identical run to run.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import safetensors
from safetensors.numpy import save_file

SEED = 20261121
CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "model_type": "bert",
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}
TOKENIZER_CONFIG = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
SPECIALS = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Enough for sentences like "The cat sat on the mat." or "Dogs were running up there!" to tokenize
# without [UNK], with "##" pieces exercised by plurals and suffixes.
WORDS = """. , ! ? ' " - ( ) : ; 0 1 2 3
the a an cat dog bird fish sat sit ran run on in at to of and or but not is was were are be
he she it they we i you this that mat hat tree house park sun moon day night big small red blue
good bad happy old new one two see saw play look book read with from up down here there man car home
##s ##ed ##ing ##ly ##er ##est ##y ##n ##t ##e""".split()
VOCAB = SPECIALS + WORDS


def canonical_shapes():
    """Canonical HF names in generation order (the order fixes the random stream)."""
    c = CONFIG
    v, h, f = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    shapes = {
        "bert.embeddings.word_embeddings.weight": (v, h),
        "bert.embeddings.position_embeddings.weight": (c["max_position_embeddings"], h),
        "bert.embeddings.token_type_embeddings.weight": (c["type_vocab_size"], h),
        "bert.embeddings.LayerNorm.weight": (h,),
        "bert.embeddings.LayerNorm.bias": (h,),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[p + part + ".weight"] = (h, h)
            shapes[p + part + ".bias"] = (h,)
        shapes[p + "attention.output.LayerNorm.weight"] = (h,)
        shapes[p + "attention.output.LayerNorm.bias"] = (h,)
        shapes[p + "intermediate.dense.weight"] = (f, h)
        shapes[p + "intermediate.dense.bias"] = (f,)
        shapes[p + "output.dense.weight"] = (h, f)
        shapes[p + "output.dense.bias"] = (h,)
        shapes[p + "output.LayerNorm.weight"] = (h,)
        shapes[p + "output.LayerNorm.bias"] = (h,)
    shapes.update({
        "bert.pooler.dense.weight": (h, h),
        "bert.pooler.dense.bias": (h,),
        "cls.predictions.transform.dense.weight": (h, h),
        "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,),
        "cls.predictions.transform.LayerNorm.bias": (h,),
        "cls.predictions.bias": (v,),
    })
    return shapes


def make_weights():
    """Weights larger than BERT's 0.02 init on purpose: at hidden 32 that init gives near-uniform
    attention and near-linear GELU, where a wrong mask, scale or activation would hardly show.
    Matrices get std 1/sqrt(fan_in) (Q/K 0.2, so attention is peaked), LayerNorm gamma 1 +- 0.1,
    beta and biases +-0.1, so every term contributes."""
    rng = np.random.default_rng(SEED)
    weights = {}
    for name, shape in canonical_shapes().items():
        if "LayerNorm.weight" in name:
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            value = 0.1 * rng.standard_normal(shape)
        elif "embeddings" in name:
            value = 0.5 * rng.standard_normal(shape)
        elif ".query." in name or ".key." in name:
            value = 0.2 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / np.sqrt(shape[1])
        weights[name] = value.astype(np.float32)
    return weights


def is_linear_weight(name):
    return name.endswith("weight") and "LayerNorm" not in name and "embeddings" not in name


def tf_name(name):
    """Google's TF BERT checkpoint names; linear kernels are stored [in, out]."""
    if name == "cls.predictions.bias":
        return "cls/predictions/output_bias"
    parts = name.split(".")
    leaf = parts.pop()
    if "LayerNorm" in parts:
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif "embeddings" in parts and leaf == "weight":
        leaf = None
    elif leaf == "weight":
        leaf = "kernel"
    path = "/".join(parts).replace("layer/", "layer_")
    return path if leaf is None else f"{path}/{leaf}"


def legacy_name(name):
    return name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")


def bf16_bits(values):
    """Round-to-nearest-even f32 -> bf16, as torch and the hardware do (weights have no NaN)."""
    bits = values.astype("<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2")


def f32_sha256(values):
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f4").tobytes()).hexdigest()


def write_bf16_safetensors(path, arrays):
    bits = {name: bf16_bits(value) for name, value in arrays.items()}
    specs = {name: safetensors.TensorSpec(dtype="bfloat16", shape=list(value.shape),
                                          data_ptr=value.ctypes.data, data_len=value.nbytes)
             for name, value in bits.items()}
    data = safetensors.serialize(specs, metadata={"format": "pt"})
    with open(path, "wb") as f:
        f.write(data)


def write_json(path, value):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def generate(out):
    """Writes every tiny-bert file into the directory `out`."""
    weights = make_weights()
    meta = {"format": "pt"}
    write_json(os.path.join(out, "config.json"), CONFIG)
    write_json(os.path.join(out, "tokenizer_config.json"), TOKENIZER_CONFIG)
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(token + "\n" for token in VOCAB)

    st = {n: w for n, w in weights.items() if n.startswith("bert.") and not n.startswith("bert.pooler.")}
    variants = {  # file -> (dtype, {canonical: stored name}, {stored name: array})
        "model.safetensors": ("F32", {n: n for n in weights}, weights),
        "model-legacy.safetensors": ("F32", {n: legacy_name(n) for n in weights},
                                     {legacy_name(n): w for n, w in weights.items()}),
        "model-st.safetensors": ("F32", {n: n[len("bert."):] for n in st},
                                 {n[len("bert."):]: w for n, w in st.items()}),
        "model-f16.safetensors": ("F16", {n: n for n in weights},
                                  {n: w.astype(np.float16) for n, w in weights.items()}),
        "model-bf16.safetensors": ("BF16", {n: n for n in weights}, weights),
        "model.npz": ("F32", {n: n for n in weights}, weights),
        "model-deflated.npz": ("F32", {n: n for n in weights}, weights),
        "model-tf.npz": ("F32", {n: tf_name(n) for n in weights},
                         {tf_name(n): (np.ascontiguousarray(w.T) if is_linear_weight(n) else w)
                          for n, w in weights.items()}),
    }
    for file, (dtype, _, arrays) in variants.items():
        path = os.path.join(out, file)
        if dtype == "BF16":
            write_bf16_safetensors(path, arrays)
        elif file.endswith(".safetensors"):
            save_file(arrays, path, metadata=meta)
        else:  # np.savez is deterministic: zipfile dates members written via open() 1980-01-01
            (np.savez_compressed if file == "model-deflated.npz" else np.savez)(path, **arrays)

    def expected_values(dtype, value):
        if dtype == "F16":
            return value.astype(np.float16).astype(np.float32)
        if dtype == "BF16":
            return (bf16_bits(value).astype(np.uint32) << 16).view(np.float32)
        return value

    expected = {
        "generator": "python3 tools/make_fixtures.py",
        "seed": SEED,
        "sha256": "of the tensor's values as contiguous little-endian float32, row-major, in HF layout "
                  "([out, in] for linear weights; TF kernels are transposed back before hashing)",
        "tensors": {n: {"shape": list(w.shape), "sha256": f32_sha256(w)} for n, w in weights.items()},
        "files": {
            file: {
                "dtype": dtype,
                "note": ("values rounded to the file's dtype: hashes are of those values widened to f32"
                         if dtype != "F32" else "exact f32 values"),
                "tensors": {n: {"name": stored, "sha256": f32_sha256(expected_values(dtype, weights[n]))}
                            for n, stored in names.items()},
            }
            for file, (dtype, names, _) in variants.items()
        },
    }
    write_json(os.path.join(out, "expected.json"), expected)


# Who produces each fixture, for the MANIFEST: first matching (directory, suffix) wins.
GENERATORS = [
    ("tiny-bert/", "", "python3 tools/make_fixtures.py"),
    ("tiny-classifier/", "", "python3 tools/make_classifier_fixture.py (.venv-torch)"),
    ("interop/", ".safetensors", "python3 tools/make_safetensors_interop_fixture.py"),
    ("interop/", ".npy", "python3 tools/make_npz_interop_fixture.py"),
    ("interop/", ".npz", "python3 tools/make_npz_interop_fixture.py"),
    ("tokenizer/", "", "python3 tools/make_tokenizer_fixture.py"),
    ("tasks/split_small", "", "python3 tools/task_split.py --make-fixture"),
    ("tasks/pair_encoding.json", "", "python3 tools/make_pair_encoding_fixture.py (.venv-torch)"),
    ("tasks/", "", "written by hand (see Tests/HDTasksTests/TaskFileTests.swift)"),
    ("reader-cases/", "", ".venv/bin/python tools/make_reader_cases.py"),
    ("vocab/", "", "copy of bert-base-uncased vocab.txt (tools/fetch-models.sh splade-tiny)"),
    ("reference/tiny-bert-forward", "", "python3 tools/reference_forward.py tiny"),
    ("reference/splade-tiny-mlm", "", "python3 tools/reference_forward.py splade --model-dir .cache/models/splade-tiny"),
    ("reference/", "-transformers.npz", "python3 tools/make_transformers_references.py (.venv-torch)"),
    ("reference/tiny-bert-grads", "", "python3 tools/make_grad_reference.py (.venv-torch)"),
    ("reference/tiny-bert-classifier-grads", "", "python3 tools/make_classifier_grad_reference.py (.venv-torch)"),
    ("reference/tiny-bert-regression-grads", "", "python3 tools/make_classifier_grad_reference.py (.venv-torch)"),
    ("reference/adamw", ".json", "python3 tools/make_adamw_reference.py (.venv-torch)"),
    ("corpus/tiny.txt", "", "first 7.6 KB of /work/shared/data/text/janeausten.txt (Sense and Sensibility, public domain)"),
]


def generator_of(relative):
    for prefix, suffix, command in GENERATORS:
        if relative.startswith(prefix) and relative.endswith(suffix):
            return command
    return None


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fixture_files(root):
    """Every regular file under fixtures/ except the MANIFEST and hidden/temporary entries."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "__pycache__")
        for name in files:
            relative = os.path.relpath(os.path.join(directory, name), root)
            if relative != "MANIFEST" and not name.startswith("."):
                found.append(relative)
    return sorted(found)


def manifest_lines(root):
    lines = ["# fixtures/MANIFEST: sha256, path (relative to fixtures/), the command that produced it.",
             "# Rewrite: python3 tools/make_fixtures.py --manifest-only   Verify: python3 tools/make_fixtures.py --check"]
    for relative in fixture_files(root):
        if any(c.isspace() for c in relative):
            raise SystemExit(f"make_fixtures.py: {relative}: fixture paths must not contain whitespace")
        command = generator_of(relative)
        if command is None:
            print(f"make_fixtures.py: warning: {relative}: no generator known; add a rule to GENERATORS",
                  file=sys.stderr)
            command = "unknown"
        lines.append(f"{file_sha256(os.path.join(root, relative))}  {relative}  {command}")
    return lines


def write_manifest(root):
    path = os.path.join(root, "MANIFEST")
    tmp = os.path.join(root, ".MANIFEST.tmp")  # hidden, so fixture_files() never lists it
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(manifest_lines(root)) + "\n")
    os.replace(tmp, path)


def check(root):
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        generate(scratch)
        for name in sorted(os.listdir(scratch)):
            committed = os.path.join(root, "tiny-bert", name)
            if not os.path.isfile(committed):
                problems.append(f"tiny-bert/{name}: expected (regenerated), found no file")
            elif file_sha256(committed) != file_sha256(os.path.join(scratch, name)):
                problems.append(f"tiny-bert/{name}: differs from a fresh regeneration")
    listed = {}
    try:
        with open(os.path.join(root, "MANIFEST"), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.startswith("#") or not line.strip():
                    continue
                fields = line.split(None, 2)
                if len(fields) < 2:
                    problems.append(f"MANIFEST line {number}: expected 'sha256  path  command', found {line!r}")
                    continue
                listed[fields[1]] = fields[0]
    except OSError as error:
        problems.append(f"MANIFEST: cannot read: {error}")
    on_disk = set(fixture_files(root))
    for relative in sorted(on_disk - listed.keys()):
        problems.append(f"{relative}: on disk but not in the MANIFEST")
    for relative in sorted(listed.keys() - on_disk):
        problems.append(f"{relative}: in the MANIFEST but not on disk")
    for relative in sorted(on_disk & listed.keys()):
        found = file_sha256(os.path.join(root, relative))
        if found != listed[relative]:
            problems.append(f"{relative}: sha256 expected {listed[relative]} (MANIFEST), found {found}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="verify instead of writing")
    mode.add_argument("--manifest-only", action="store_true", help="only rewrite fixtures/MANIFEST")
    args = parser.parse_args()
    if len(VOCAB) != CONFIG["vocab_size"] or len(set(VOCAB)) != len(VOCAB):
        raise SystemExit(f"make_fixtures.py: vocabulary: expected {CONFIG['vocab_size']} distinct tokens, "
                         f"found {len(VOCAB)} ({len(set(VOCAB))} distinct)")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "fixtures")
    root = os.path.normpath(root)

    if args.check:
        problems = check(root)
        for problem in problems:
            print(f"make_fixtures.py --check: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"make_fixtures.py --check: {len(fixture_files(root))} fixture files match the MANIFEST; "
              "tiny-bert/ regenerates byte-identically")
        return 0
    if not args.manifest_only:
        target = os.path.join(root, "tiny-bert")
        os.makedirs(target, exist_ok=True)
        # Generate aside, then rename file by file: tests polling tiny-bert/ never see a partial file.
        with tempfile.TemporaryDirectory(dir=root, prefix=".tiny-bert-") as scratch:
            generate(scratch)
            for name in sorted(os.listdir(scratch)):
                os.chmod(os.path.join(scratch, name), 0o644)
                os.replace(os.path.join(scratch, name), os.path.join(target, name))
    write_manifest(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
