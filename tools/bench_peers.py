#!/usr/bin/env python3
"""hd-infer against its peers, by hand (never in CI): onnxruntime on the optimised graph and PyTorch eager.

    .venv-torch/bin/python -m pip install onnxruntime onnx onnxscript    # once, beside torch (tools/venv-torch.sh)
    swift build -c release --product hd-infer
    .venv-torch/bin/python tools/bench_peers.py [--threads 2] [--rounds 3] [--iterations 10] [--out bench_peers.json]
        [--shapes 1x32,1x128] [--skip-random]

Models: the BERT-base-sized real checkpoint (.cache/models/bert-base-mpnet, from tools/fetch-models.sh)
and random BERT shapes 576/2304 and 256/1024 (HomoBERT-base and -small widths). Every runtime reads
the same weights: the random shapes are written once as a Hugging Face directory (config.json +
model.safetensors) that hd-infer, PyTorch and the ONNX export all load.

onnxruntime gets the graph exported from PyTorch, then onnxruntime.transformers' optimizer
(model_type "bert": fused Attention, SkipLayerNorm, BiasGelu; the fused-op counts are printed).
"onnxruntime int8" is that optimised graph through `quantize_dynamic(per_channel=True,
weight_type=QInt8)`, what onnxruntime's quantisation docs recommend for transformers (MatMulInteger
/ DynamicQuantizeMatMul, activations quantised per tensor at run time). `--precisions` adds
hd-infer runs with `--precision bf16` / `int8` in the same rounds.
All three run with the same thread count and inputs of the same shape (random ids past the special
tokens, no padding); latency does not depend on the id values. Runs are interleaved: each round
runs hd-infer (a subprocess timing `--iterations` forwards), then onnxruntime, then PyTorch, and
medians are over the samples of all rounds. Prints a table and writes JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import BertConfig, BertModel

REPO = Path(__file__).resolve().parent.parent


def random_model_dir(root: Path, hidden: int, ffn: int, layers: int) -> Path:
    """A BERT of the given widths with random weights, as a Hugging Face directory."""
    out = root / f"bert-{hidden}-{ffn}-{layers}"
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=hidden // 64, intermediate_size=ffn)
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False)
    tensors = {f"bert.{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()
               if not k.endswith("position_ids")}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    return out


def load_torch(model_dir: Path) -> BertModel:
    config = BertConfig.from_json_file(str(model_dir / "config.json"))
    model = BertModel(config, add_pooling_layer=False)
    from safetensors.torch import load_file
    state = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()
             if k.startswith("bert.") and not k.startswith("bert.pooler")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        sys.exit(f"{model_dir}: weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


class Encoder(torch.nn.Module):
    """BertModel called by keyword, returning the last hidden state: what the exporter traces."""

    def __init__(self, bert: BertModel):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state


class Logits(torch.nn.Module):
    """A BertFor… model (masked LM, sequence classifier) called by keyword, returning its logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def export_onnx(model, path: Path, threads: int, logits: str | None = None):
    """Exports the encoder (output last_hidden_state) or, with `logits` "token" (a masked LM) or
    "sequence" (a classifier), the model's logits, and runs onnxruntime's BERT optimizer over it."""
    from onnxruntime.transformers.optimizer import optimize_model
    raw = path.with_suffix(".raw.onnx")
    ids = torch.ones(1, 16, dtype=torch.long)
    # The optimizer fuses the attention subgraph of the eager implementation, not SDPA's.
    timed_implementation = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    output = "logits" if logits else "last_hidden_state"
    axes = {n: {0: "batch", 1: "seq"} for n in inputs} | {output: {0: "batch"} if logits == "sequence" else {0: "batch", 1: "seq"}}
    with torch.no_grad():
        torch.onnx.export(Logits(model) if logits else Encoder(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                          str(raw), input_names=inputs, output_names=[output], opset_version=17, dynamo=False,
                          dynamic_axes=axes)
    model.config._attn_implementation = timed_implementation
    c = model.config
    optimized = optimize_model(str(raw), model_type="bert", num_heads=c.num_attention_heads,
                               hidden_size=c.hidden_size, opt_level=1)
    optimized.save_model_to_file(str(path))
    raw.unlink()
    return optimized.get_fused_operator_statistics()


def quantize_onnx(path: Path) -> Path:
    """The optimised graph with its weights quantised per channel to int8, activations dynamically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    out = path.with_suffix(".int8.onnx")
    import onnx
    # The fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference; their
    # outputs are f32, which DefaultTensorType tells the quantiser.
    quantize_dynamic(str(path), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


def ort_version() -> str:
    import onnxruntime as ort
    return ort.__version__


def ort_session(path: Path, threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_calls(fn, warmup: int, iterations: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hd-infer", default=str(REPO / ".build/release/hd-infer"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10, help="timed forwards per runtime per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--work", default=str(REPO / ".cache/bench-peers"), help="where the random models and ONNX files go")
    p.add_argument("--out", default="bench_peers.json")
    p.add_argument("--quick", action="store_true", help="BERT-base at 1x128 only")
    p.add_argument("--shapes", default="1x32,1x128,1x384,8x128",
                   help="BERT-base batch x seq cases, comma-separated (the random models always run 1x128)")
    p.add_argument("--skip-random", action="store_true", help="only the BERT-base-sized checkpoint")
    p.add_argument("--also-openblas", action="store_true",
                   help="also time hd-infer --kernel openblas (row-major weights through OpenBLAS) in the same rounds")
    p.add_argument("--precisions", default="fp32",
                   help="hd-infer --precision values to time in the same rounds, comma-separated (fp32 first); "
                        "PRECISION:INSTRUCTIONS (e.g. int8:avx512) also passes --instructions")
    p.add_argument("--skip-pytorch", action="store_true", help="no PyTorch eager runs")
    p.add_argument("--pytorch-max-tokens", type=int, default=512,
                   help="skip PyTorch eager above this many tokens per forward (it is the slowest by far)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = REPO / ".cache/models/bert-base-mpnet"
    if not (base / "model.safetensors").exists():
        sys.exit(f"{base} is missing: run tools/fetch-models.sh bert-base-mpnet")
    shapes = [tuple(int(v) for v in case.split("x")) for case in args.shapes.split(",")]
    cases = [("bert-base-mpnet (768/3072)", base, [(1, 128)] if args.quick else shapes)]
    if not (args.quick or args.skip_random):
        cases += [("random 576/2304", random_model_dir(work, 576, 2304, 12), [(1, 128)]),
                  ("random 256/1024", random_model_dir(work, 256, 1024, 12), [(1, 128)])]

    env = dict(os.environ)
    results = []
    for name, model_dir, shapes in cases:
        model = load_torch(model_dir)
        onnx_path = work / f"{model_dir.name}.opt.onnx"
        fused = export_onnx(model, onnx_path, args.threads)
        print(f"{name}: onnxruntime fused operators {fused}", file=sys.stderr)
        session = ort_session(onnx_path, args.threads)
        int8_session = ort_session(quantize_onnx(onnx_path), args.threads)
        vocab = model.config.vocab_size
        for batch, seq in shapes:
            rng = np.random.default_rng(batch * 1000 + seq)
            ids = rng.integers(1000, vocab, size=(batch, seq), dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            tids = torch.from_numpy(ids)
            with_torch = batch * seq <= args.pytorch_max_tokens and not args.skip_pytorch
            # hd-infer with its default GEMM kernel, and optionally with OpenBLAS's.
            hd_runs = {"hd-infer": []} | ({"hd-infer openblas": ["--kernel", "openblas"]} if args.also_openblas else {})
            hd_runs |= {f"hd-infer {p}": ["--precision", p.split(":")[0]] + (["--instructions", p.split(":")[1]] if ":" in p else [])
                        for p in args.precisions.split(",") if p != "fp32"}
            samples = ({k: [] for k in hd_runs} | {"onnxruntime": [], "onnxruntime int8": []}
                       | ({"pytorch": []} if with_torch else {}))
            load_before = os.getloadavg()
            hd_report, instructions = None, {}
            for _ in range(args.rounds):
                for key, extra in hd_runs.items():
                    out = subprocess.run([args.hd_infer, "bench", str(model_dir), "--batch", str(batch), "--seq-len", str(seq),
                                          "--threads", str(args.threads), "--warmup", str(args.warmup),
                                          "--iterations", str(args.iterations), "--json"] + extra,
                                         check=True, capture_output=True, text=True, env=env).stdout
                    report = json.loads(out)
                    samples[key] += report["latency_samples_ms"]
                    instructions[key] = report.get("instructions")
                    if key == "hd-infer":
                        hd_report = report
                samples["onnxruntime"] += time_calls(lambda: session.run(None, feeds), args.warmup, args.iterations)
                samples["onnxruntime int8"] += time_calls(lambda: int8_session.run(None, feeds), args.warmup, args.iterations)
                if not with_torch:
                    continue
                with torch.inference_mode():
                    samples["pytorch"] += time_calls(lambda: model(input_ids=tids, attention_mask=torch.ones_like(tids),
                                                                   token_type_ids=torch.zeros_like(tids)),
                                                     args.warmup, args.iterations)
            medians = {k: statistics.median(v) for k, v in samples.items()}
            results.append({
                "model": name, "batch": batch, "seq_len": seq, "threads": args.threads,
                "samples_per_runtime": len(samples["hd-infer"]),
                "median_ms": medians,
                "hd_infer_over_onnxruntime": medians["hd-infer"] / medians["onnxruntime"],
                "onnxruntime_int8_over_onnxruntime": medians["onnxruntime int8"] / medians["onnxruntime"],
                "precision_ratios": {k.removeprefix("hd-infer "): {"over_onnxruntime": medians[k] / medians["onnxruntime"],
                                                                   "over_onnxruntime_int8": medians[k] / medians["onnxruntime int8"]}
                                     for k in medians if k.startswith("hd-infer ") and k != "hd-infer openblas"},
                "hd_infer_over_pytorch": medians["hd-infer"] / medians["pytorch"] if with_torch else None,
                "flops_per_forward": hd_report["flops_per_forward"],
                "hd_infer_gflops_per_s": hd_report["flops_per_forward"] / medians["hd-infer"] / 1e6,
                "hd_infer_peak_rss_mb": hd_report["peak_rss_mb"],
                "hd_infer_gemm_kernel": hd_report.get("gemm_kernel"),
                "hd_infer_instructions": instructions,
                "hd_infer_openblas_core": hd_report.get("openblas_core"),
                "onnxruntime_version": ort_version(),
                "hd_infer_openblas_over_onnxruntime": (medians["hd-infer openblas"] / medians["onnxruntime"]
                                                       if args.also_openblas else None),
                "onnxruntime_fused_operators": fused,
                "openblas_coretype": env.get("OPENBLAS_CORETYPE"),
                "openblas_l2_size": env.get("OPENBLAS_L2_SIZE"),
                "load_average_before": load_before, "load_average_after": os.getloadavg(),
            })
            r = results[-1]
            print(f"{name:28} {batch}x{seq:<4} hd-infer {medians['hd-infer']:8.1f} ms  onnxruntime {medians['onnxruntime']:8.1f} ms"
                  f"  pytorch {medians.get('pytorch', float('nan')):8.1f} ms  hd/ort {r['hd_infer_over_onnxruntime']:.2f}"
                  + (f"  openblas/ort {r['hd_infer_openblas_over_onnxruntime']:.2f}" if args.also_openblas else "")
                  + f"  ort-int8 {medians['onnxruntime int8']:8.1f} ms"
                  + "".join(f"  {p} {medians['hd-infer ' + p]:8.1f} ms ({q['over_onnxruntime']:.2f}x ort, {q['over_onnxruntime_int8']:.2f}x ort-int8)"
                            for p, q in r["precision_ratios"].items())
                  + f"  load {load_before[0]:.2f} -> {r['load_average_after'][0]:.2f}", flush=True)

    print()
    print(f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', '(unset)')} OPENBLAS_L2_SIZE={env.get('OPENBLAS_L2_SIZE', '(unset)')}")
    print(f"| model | batch×seq | hd-infer ms | onnxruntime ms | PyTorch ms | hd-infer / ort | GFLOP/s (hd-infer) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        m = r["median_ms"]
        print(f"| {r['model']} | {r['batch']}×{r['seq_len']} | {m['hd-infer']:.1f} | {m['onnxruntime']:.1f} | {m.get('pytorch', float('nan')):.1f}"
              f" | {r['hd_infer_over_onnxruntime']:.2f} | {r['hd_infer_gflops_per_s']:.1f} |")
    Path(args.out).write_text(json.dumps({"threads": args.threads, "rounds": args.rounds,
                                          "iterations_per_round": args.iterations, "results": results}, indent=1))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
