#!/usr/bin/env python3
"""Run an `hd-export --onnx` model through the ONNX reference tools and print what they computed.

    .venv/bin/python tools/check_onnx.py MODEL.onnx < batch.json [--optimize OPTIMIZED.onnx]

stdin: {"input_ids": [[...], ...], "attention_mask": [[...]], "token_type_ids": [[...]]} (one row
per sequence, padded to one length). Runs `onnx.checker.check_model` (full check, with the external
data when there is some), then onnxruntime (CPU) on the batch, and prints one JSON object:
{"opset", "inputs", "outputs": {name: {"shape", "values" (flat, row-major)}}}. With --optimize,
also runs onnxruntime's transformer optimiser (model_type "bert", num_heads/hidden_size 0 = read
from the graph), saves the optimised model, runs it on the same batch and adds
"fused": {op type: count} and "optimized_outputs". Used by the Swift interop tests (tools venv:
numpy, onnx, onnxruntime), which compare the outputs to the Swift forward.
"""
import json
import logging
import sys

import numpy as np
import onnx
import onnxruntime


def run(path, feeds):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, feeds)
    return {n: {"shape": list(v.shape), "values": v.astype(np.float64).ravel().tolist()} for n, v in zip(names, values)}


def main():
    path = sys.argv[1]
    optimized = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--optimize" else None
    batch = json.load(sys.stdin)
    feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}

    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    out = {
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "inputs": [i.name for i in model.graph.input],
        "outputs": run(path, feeds),
        "ops": sorted({n.op_type for n in model.graph.node}),
    }
    if optimized:
        logging.disable(logging.WARNING)
        from onnxruntime.transformers import optimizer

        m = optimizer.optimize_model(path, model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
        out["fused"] = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
        m.save_model_to_file(optimized)
        out["optimized_outputs"] = run(optimized, feeds)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
