#!/usr/bin/env python3
"""hd-infer and onnxruntime on the same teacher and student, in the same run (by hand, never in CI).

    .venv/bin/python tools/bench_onnx_student.py --hd-infer .build/release/hd-infer \
        teacher=T.safetensors,T.onnx student=S.safetensors,S.onnx [--rounds 5] [--iterations 100] [--seq-len 128]

Each NAME=SAFETENSORS,ONNX pair is one model as hd-export wrote it (the canonical file for hd-infer,
`--onnx` for onnxruntime). Rounds interleave the runtimes: every round runs `hd-infer bench --json`
on each model (a subprocess timing --iterations forwards of 1 × --seq-len) and then onnxruntime
(CPU, after its transformer optimiser, the same number of forwards, same shape, same ids); medians
are over all rounds' samples. One thread each. Prints, per model, both medians, the speed-up over
the first model in each runtime and the FLOP ratio (hd-infer's flops_per_forward), then one JSON line.
"""
import argparse
import json
import logging
import statistics
import subprocess
import time

import numpy as np
import onnxruntime
from onnxruntime.transformers import optimizer


def session(path):
    logging.disable(logging.WARNING)
    fused = optimizer.optimize_model(path, model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    out = path + ".optimized.onnx"
    fused.save_model_to_file(out)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(out, options, providers=["CPUExecutionProvider"]), fused.get_fused_operator_statistics()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hd-infer", required=True)
    p.add_argument("models", nargs="+")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--seq-len", type=int, default=128)
    a = p.parse_args()
    models = [(m.split("=")[0], *m.split("=")[1].split(",")) for m in a.models]
    feeds = {"input_ids": np.random.default_rng(0).integers(1000, 30000, (1, a.seq_len)),
             "attention_mask": np.ones((1, a.seq_len), np.int64), "token_type_ids": np.zeros((1, a.seq_len), np.int64)}
    sessions = {name: session(onnx) for name, _, onnx in models}
    samples = {name: {"hd-infer": [], "onnxruntime": []} for name, _, _ in models}
    flops = {}
    for _ in range(a.rounds):
        for name, weights, _ in models:
            r = json.loads(subprocess.run([a.hd_infer, "bench", weights, "--seq-len", str(a.seq_len), "--batch", "1", "--threads", "1",
                                           "--warmup", "10", "--iterations", str(a.iterations), "--json"],
                                          check=True, capture_output=True, text=True).stdout)
            samples[name]["hd-infer"] += r["latency_samples_ms"]
            flops[name] = r["flops_per_forward"]
            s = sessions[name][0]
            for _ in range(10):
                s.run(None, feeds)
            for _ in range(a.iterations):
                t = time.perf_counter()
                s.run(None, feeds)
                samples[name]["onnxruntime"].append((time.perf_counter() - t) * 1e3)
    first = models[0][0]
    result = {}
    for name, _, _ in models:
        med = {k: statistics.median(v) for k, v in samples[name].items()}
        result[name] = {"median_ms": med, "flops_per_forward": flops[name], "fused": {k: v for k, v in sessions[name][1].items() if v},
                        "speedup": {k: statistics.median(samples[first][k]) / med[k] for k in med},
                        "flop_ratio": flops[first] / flops[name]}
        print(f"{name}: hd-infer {med['hd-infer']:.3f} ms, onnxruntime {med['onnxruntime']:.3f} ms per 1×{a.seq_len}; "
              f"speed-up over {first}: hd-infer {result[name]['speedup']['hd-infer']:.2f}×, onnxruntime "
              f"{result[name]['speedup']['onnxruntime']:.2f}×, FLOP ratio {result[name]['flop_ratio']:.2f}×")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
