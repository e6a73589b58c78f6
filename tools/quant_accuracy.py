#!/usr/bin/env python3
"""The accuracy cost of hd-infer's int8 and bf16 precisions against its fp32, by hand (never in CI).

    swift build -c release --product hd-infer
    python3 tools/quant_accuracy.py --sentences TEXT_FILE [--count 1000] [--splade MODEL] [--out accuracy.json]

Sentences: the first `--count` lines of TEXT_FILE with 40–400 characters (one paragraph or
sentence per line), none of which any model here was trained on by this project.
- Embeddings: all-MiniLM-L6-v2 (.cache/models/minilm), `hd-infer embed --normalize` (mean
  pooling), each precision on the same sentences; cosine of each int8 / bf16 embedding with the
  fp32 one: mean and minimum.
- Fill-mask: splade-tiny (.cache/models/splade-tiny as shipped, or `--splade` such as the MLM
  warm-up of docs/RESULTS.md, whose corpus must not hold TEXT_FILE), the middle word of each sentence
  replaced by [MASK]; the fraction of sentences whose top-1 token equals fp32's (`predictions` holds
one list per [MASK]; here the one).
Standard library only: hd-infer does the work, one subprocess per model and precision.

With `--onnxruntime` (run it with .venv-torch/bin/python after `.venv-torch/bin/python -m pip install
onnxruntime onnx onnxscript`), onnxruntime's int8 on the same sentences beside ours: MiniLM exported
from PyTorch, optimised by onnxruntime.transformers' BERT optimizer and quantised by
`quantize_dynamic(per_channel=True, weight_type=QInt8)` exactly as tools/bench_peers.py does for its
latency figures; each sentence run alone (no padding), mean-pooled and normalised as `hd-infer embed
--normalize` does; the cosine of each int8 embedding with onnxruntime's own fp32 one, and with
hd-infer's fp32 one. Also the fill-mask model (its masked-LM head exported too, a checkpoint of
ours first written out by `hd-export --shrink --hf-dir`): top-1 agreement of onnxruntime int8 with
its own fp32 and with hd-infer's fp32. With `--classifier CKPT… --dev TSV` (classifiers of
hd-finetune, e.g. one per seed, and a split with text and label columns), the same for a sequence classifier on every
row of the split: dev accuracy of onnxruntime fp32 and int8 and of hd-infer at each precision, and
how often each label equals its fp32 one. `quantize_dynamic` quantises every MatMul it finds, the
masked-LM and classifier heads included (hd-infer keeps them in fp32): its default, which the
figures are of.
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(hd_infer: str, command: str, model: Path, lines: list[str], precision: str, threads: int) -> list[dict]:
    extra = ["--normalize"] if command == "embed" else ["--top-k", "1"]
    out = subprocess.run([hd_infer, command, str(model), "-", "--json", "--truncate", "--precision", precision,
                          "--threads", str(threads)] + extra,
                         input="\n".join(lines) + "\n", check=True, capture_output=True, text=True).stdout
    results = [json.loads(line) for line in out.splitlines()]
    if len(results) != len(lines):
        raise SystemExit(f"{command} {precision}: expected {len(lines)} results, found {len(results)}")
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hd-infer", default=str(REPO / ".build/release/hd-infer"))
    p.add_argument("--sentences", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--splade", default=str(REPO / ".cache/models/splade-tiny"), help="the fill-mask model")
    p.add_argument("--out", default="quant_accuracy.json")
    p.add_argument("--onnxruntime", action="store_true", help="also onnxruntime's int8 on the same sentences (needs .venv-torch)")
    p.add_argument("--classifier", nargs="+", default=[],
                   help="with --onnxruntime: sequence classifier checkpoints of hd-finetune to score (e.g. one per seed)")
    p.add_argument("--dev", help="with --classifier: the TSV (text, label) to score it on")
    args = p.parse_args()

    lines = [line.strip() for line in Path(args.sentences).read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if 40 <= len(line) <= 400][:args.count]
    masked = []
    for line in lines:
        words = line.split()
        words[len(words) // 2] = "[MASK]"
        masked.append(" ".join(words))

    minilm, splade = REPO / ".cache/models/minilm", Path(args.splade)
    embeddings = {p: [r["embedding"] for r in run(args.hd_infer, "embed", minilm, lines, p, args.threads)]
                  for p in ["fp32", "bf16", "int8"]}
    top1 = {p: [r["predictions"][0][0]["id"] for r in run(args.hd_infer, "fill-mask", splade, masked, p, args.threads)]
            for p in ["fp32", "bf16", "int8"]}
    report = {"sentences": len(lines), "source": args.sentences, "fill_mask_model": str(splade), "precisions": {}}
    for p in ["bf16", "int8"]:
        cosines = [sum(a * b for a, b in zip(x, y)) for x, y in zip(embeddings[p], embeddings["fp32"])]
        agreement = sum(a == b for a, b in zip(top1[p], top1["fp32"])) / len(lines)
        report["precisions"][p] = {"minilm_cosine_mean": statistics.fmean(cosines), "minilm_cosine_min": min(cosines),
                                   "splade_tiny_top1_agreement": agreement}
        print(f"{p}: MiniLM cosine with fp32 mean {statistics.fmean(cosines):.6f} min {min(cosines):.6f};"
              f" splade-tiny fill-mask top-1 agreement {agreement:.4f} ({len(lines)} sentences)")
    if args.onnxruntime:
        report["onnxruntime_int8"] = onnxruntime_int8(minilm, lines, embeddings["fp32"], args.threads)
        report["onnxruntime_int8_fill_mask"] = onnxruntime_fill_mask(args.hd_infer, splade, masked, top1["fp32"], args.threads)
        print(f"fill-mask top-1 agreement of onnxruntime int8: with its fp32 "
              f"{report['onnxruntime_int8_fill_mask']['top1_agreement_with_own_fp32']:.4f}")
        report["classifiers"] = [classifier_accuracy(args.hd_infer, Path(c), Path(args.dev), args.threads) for c in args.classifier]
        for c in report["classifiers"]:
            for k, v in c["runs"].items():
                print(f"{Path(c['checkpoint']).name} {k}: dev accuracy {v['accuracy']:.4f}, "
                      f"label equal to its fp32's {v['label_agreement_with_own_fp32']:.4f}")
        ours = report["precisions"]["int8"]["minilm_cosine_mean"]
        theirs = report["onnxruntime_int8"]
        print(f"MiniLM int8 cosine with fp32, mean: hd-infer {ours:.6f}; onnxruntime {theirs['cosine_with_own_fp32_mean']:.6f} "
              f"(min {theirs['cosine_with_own_fp32_min']:.6f}; with hd-infer's fp32 {theirs['cosine_with_hd_infer_fp32_mean']:.6f})")
    Path(args.out).write_text(json.dumps(report, indent=1))


def onnxruntime_int8(model_dir: Path, lines: list[str], ours_fp32: list[list[float]], threads: int) -> dict:
    """onnxruntime fp32 and int8 (the graph and quantisation of tools/bench_peers.py) on `lines`."""
    import tempfile
    import numpy as np
    import onnxruntime
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False).eval()
    with tempfile.TemporaryDirectory() as work:
        sessions = fp32_and_int8_sessions(model, Path(work) / "minilm.onnx", threads)
        pooled = {k: [] for k in sessions}
        for line in lines:
            encoded = tokenizer(line, return_tensors="np", truncation=True)
            for k, session in sessions.items():
                hidden = session.run(None, ort_feeds(encoded))[0][0]
                v = hidden.mean(axis=0)
                pooled[k].append(v / max(np.linalg.norm(v), 1e-12))
    own = [float(a @ b) for a, b in zip(pooled["int8"], pooled["fp32"])]
    against_ours = [float(a @ np.asarray(b, dtype=np.float32)) for a, b in zip(pooled["int8"], ours_fp32)]
    fp32_agreement = [float(a @ np.asarray(b, dtype=np.float32)) for a, b in zip(pooled["fp32"], ours_fp32)]
    return {"onnxruntime": onnxruntime.__version__, "quantisation": "quantize_dynamic(per_channel=True, weight_type=QInt8) of the optimised graph",
            "cosine_with_own_fp32_mean": statistics.fmean(own), "cosine_with_own_fp32_min": min(own),
            "cosine_with_hd_infer_fp32_mean": statistics.fmean(against_ours),
            "fp32_cosine_onnxruntime_vs_hd_infer_mean": statistics.fmean(fp32_agreement)}


def fp32_and_int8_sessions(model, path: Path, threads: int, logits: str | None = None) -> dict:
    """onnxruntime sessions on `model` exported to `path` and optimised (tools/bench_peers.py), and on
    its `quantize_dynamic` int8 copy: {"fp32": …, "int8": …}."""
    import bench_peers
    bench_peers.export_onnx(model, path, threads, logits=logits)
    return {"fp32": bench_peers.ort_session(path, threads), "int8": bench_peers.ort_session(bench_peers.quantize_onnx(path), threads)}


def ort_feeds(encoded) -> dict:
    import numpy as np
    return {k: encoded[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


def hf_dir_of(hd_infer: str, model: Path, work: Path) -> Path:
    """`model` as a transformers directory: itself when it is one, else our checkpoint written out by
    `hd-export --shrink --hf-dir` (a checkpoint without masks is written as it is)."""
    if model.is_dir():
        return model
    out = work / model.stem
    subprocess.run([str(Path(hd_infer).parent / "hd-export"), "--shrink", str(model), "-o", str(work / f"{model.stem}.safetensors"),
                    "--hf-dir", str(out)], check=True, capture_output=True)
    return out


def onnxruntime_fill_mask(hd_infer: str, model: Path, masked: list[str], ours_fp32: list[int], threads: int) -> dict:
    """onnxruntime fp32 and int8 of the masked LM on `masked`: the top-1 token at each [MASK]."""
    import tempfile
    import numpy as np
    import onnxruntime
    from transformers import AutoTokenizer, BertForMaskedLM

    with tempfile.TemporaryDirectory() as work:
        model_dir = hf_dir_of(hd_infer, model, Path(work))
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        torch_model = BertForMaskedLM.from_pretrained(str(model_dir)).eval()
        sessions = fp32_and_int8_sessions(torch_model, Path(work) / "mlm.onnx", threads, logits="token")
        top1 = {k: [] for k in sessions}
        for line in masked:
            encoded = tokenizer(line, return_tensors="np", truncation=True)
            position = int(np.nonzero(encoded["input_ids"][0] == tokenizer.mask_token_id)[0][0])
            for k, session in sessions.items():
                top1[k].append(int(session.run(None, ort_feeds(encoded))[0][0, position].argmax()))
    def agreement(a, b):
        return sum(x == y for x, y in zip(a, b)) / len(a)
    return {"onnxruntime": onnxruntime.__version__, "model": str(model),
            "top1_agreement_with_own_fp32": agreement(top1["int8"], top1["fp32"]),
            "top1_agreement_with_hd_infer_fp32": agreement(top1["int8"], ours_fp32),
            "fp32_top1_agreement_onnxruntime_vs_hd_infer": agreement(top1["fp32"], ours_fp32)}


def classifier_accuracy(hd_infer: str, checkpoint: Path, dev: Path, threads: int) -> dict:
    """Dev accuracy of the classifier under onnxruntime fp32 / int8 and hd-infer fp32 / bf16 / int8,
    every row of `dev` run alone (no padding), and each run's label agreement with its runtime's fp32."""
    import csv
    import tempfile
    import numpy as np
    import onnxruntime
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    with open(dev, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    texts, gold = [r["text"] for r in rows], [r["label"] for r in rows]
    with safe_open(str(checkpoint), "pt") as f:
        meta = f.metadata()
    config = BertConfig(**json.loads(meta["hd.config"]))
    model = BertForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(load_file(str(checkpoint)), strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"{checkpoint}: weights do not fit BertForSequenceClassification: missing {missing}, unexpected {unexpected}")
    model.eval()
    runs = {}
    with tempfile.TemporaryDirectory() as work:
        vocab = Path(work) / "vocab.txt"
        vocab.write_text(meta["hd.vocab"] + "\n", encoding="utf-8")
        tokenizer = BertTokenizer(str(vocab), do_lower_case=meta["hd.do_lower_case"] == "true")
        sessions = fp32_and_int8_sessions(model, Path(work) / "classifier.onnx", threads, logits="sequence")
        labels = {k: [] for k in sessions}
        for text in texts:
            feeds = ort_feeds(tokenizer(text, return_tensors="np", truncation=True, max_length=config.max_position_embeddings))
            for k, session in sessions.items():
                labels[k].append(config.id2label[int(session.run(None, feeds)[0][0].argmax())])
        for k, v in labels.items():
            runs[f"onnxruntime {k}"] = v
    for precision in ("fp32", "bf16", "int8"):
        out = subprocess.run([hd_infer, "classify", str(checkpoint), "-", "--json", "--precision", precision, "--threads", str(threads)],
                             input="\n".join(texts) + "\n", check=True, capture_output=True, text=True).stdout
        runs[f"hd-infer {precision}"] = [json.loads(line)["label"] for line in out.splitlines() if line.strip()]
    def fraction(a, b):
        return sum(x == y for x, y in zip(a, b)) / len(a)
    return {"checkpoint": str(checkpoint), "dev": str(dev), "examples": len(texts), "onnxruntime": onnxruntime.__version__,
            "torch_matches_hd_infer_fp32": fraction(runs["onnxruntime fp32"], runs["hd-infer fp32"]),
            "runs": {k: {"accuracy": fraction(v, gold),
                         "label_agreement_with_own_fp32": fraction(v, runs[k.split()[0] + " fp32"])}
                     for k, v in runs.items()}}


if __name__ == "__main__":
    main()
