#!/usr/bin/env python3
"""Where a training step's time goes: `perf record` of hd-distill, samples bucketed by part, by hand
(never in CI; needs Linux perf).

    swift build -c release --product hd-distill
    python3 tools/profile_step.py --shape minilm [--threads 1] [--steps 12] [--matmul bf16] [--pruned] [--out profile.json]

Runs hd-distill on the teacher of `--shape` (minilm: .cache/models/minilm, all-MiniLM-L6-v2;
bert-base: .cache/models/bert-base-random, which `tools/bench_train_peers.py --step distill --shape
bert-base` writes) with the recipe tools/bench_train_peers.py times (HomoDistil towards half width,
batch 16 × 128), under `perf record`, and sorts every sample by symbol into the parts of a step:
the GEMM micro-kernel, the GEMM's packing and transposing of operands, the pruned student's gathers,
attention softmax, GELU, LayerNorm, the losses, the optimiser (AdamW, gradient norms and clipping),
the pruner, the kernel (page faults, scheduling), start-up and the rest. `--pruned` prunes at the
first step (one-shot) so every profiled step runs at the target widths; by default the cubic
schedule starts after the profiled steps, so every step runs at full width. Loading, tokenising and
writing the checkpoint are in the samples too (start-up); `--steps` keeps them a small share.
Prints a table and writes JSON.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHAPES = {
    "minilm": {"teacher": REPO / ".cache/models/minilm", "hidden": 192, "ffn": 768},
    "bert-base": {"teacher": REPO / ".cache/models/bert-base-random", "hidden": 384, "ffn": 1536},
}

# (part, pattern on the symbol); the first match wins. Swift symbols are mangled: their module and
# type names appear in them as length-prefixed words.
PARTS = [
    ("GEMM micro-kernel", r"^tile\d+$|^hd_packed_gemm$|^apply_epilogue$|^bf16_block$|^store_bf16$|^run_tiles$"),
    ("GEMM operand packing and transposing", r"^hd_pack_weights|^hd_transpose$|^__memmove|^hd_bf16_(pack|convert|transpose)"),
    ("pruned student's gathers (KeptUnits)", r"withGathered|withScattered|gatherWeights"),
    ("attention softmax", r"hd_softmax_rows|softmaxRows"),
    ("GELU", r"hd_gelu|gelu"),
    ("LayerNorm", r"layerNorm"),
    ("losses", r"HDTraining6Losses|PooledCosine|CrossCorrelation|LayerDistillation"),
    ("optimiser (AdamW, norms, clipping)", r"AdamW|GradientClipping|KernelsO3dot"),
    ("pruner (importance, masks, zeroing)", r"Importance|PruneMasks|Pruner"),
    ("other element-wise (bias, residual adds, embeddings, zeroing)",
     r"addBias|biasBackward|KernelsO3add|embedding|__memset|ParallelForO4zero"),
    ("workers waiting (spin)", r"WorkerPool"),
    ("kernel (page faults, scheduling)", r"^\[k\]"),
    ("start-up, loading, checkpoint", r"sha256|_dl_|do_lookup|Checkpoint|SafeTensors|Corpus|Tokenizer|WordPiece|strcmp|memcmp"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=SHAPES, default="minilm")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--matmul", choices=["fp32", "bf16"], default="fp32", help="hd-distill's --matmul")
    p.add_argument("--pruned", action="store_true", help="prune at the first step (one-shot): profile the target widths")
    p.add_argument("--corpus", default=str(REPO / "data/demo/northanger-abbey.txt"))
    p.add_argument("--hd-distill", default=str(REPO / ".build/release/hd-distill"))
    p.add_argument("--out", default="profile.json")
    args = p.parse_args()
    shape = SHAPES[args.shape]
    schedule = ["--schedule", "one-shot"] if args.pruned else ["--prune-start", str(args.steps - 1), "--prune-end", str(args.steps)]
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "perf.data"
        subprocess.run(["perf", "record", "-o", str(data), "--", args.hd_distill, str(shape["teacher"]),
                        "--corpus", args.corpus, "-o", str(Path(work) / "student.ckpt"),
                        "--hidden", str(shape["hidden"]), "--ffn", str(shape["ffn"]), *schedule,
                        "--steps", str(args.steps), "--batch", "16", "--seq-len", "128", "--threads", str(args.threads),
                        "--matmul", args.matmul, "--held-out-every", "0", "--eval-every", "0", "--save-every", "0"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol", "-g", "none",
                                 "--percent-limit", "0", "--stdio"], check=True, capture_output=True, text=True).stdout
    shares = {name: 0.0 for name, _ in PARTS} | {"rest": 0.0}
    symbols = {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\[[.k]\])\s+(\S.*?)\s*$", line)
        if not m:
            continue
        share, kind, symbol = float(m.group(1)), m.group(2), m.group(3).split()[0]
        name = "[k]" if kind == "[k]" else symbol
        part = next((n for n, pattern in PARTS if re.search(pattern, name)), "rest")
        shares[part] += share
        symbols.setdefault(part, []).append((symbol, share))
    print(f"hd-distill {args.shape}, --matmul {args.matmul}, {args.threads} thread(s), {args.steps} steps, "
          f"{'pruned at step 1 (target widths)' if args.pruned else 'full width'}")
    print("| part | share of samples | largest symbols |\n|---|---|---|")
    for part, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        top = ", ".join(f"{s[:40]} {v:.1f}" for s, v in sorted(symbols.get(part, []), key=lambda x: -x[1])[:2])
        print(f"| {part} | {share:.1f} % | {top} |")
    Path(args.out).write_text(json.dumps({"shape": args.shape, "threads": args.threads, "matmul": args.matmul, "steps": args.steps,
                                          "pruned": args.pruned, "shares_percent": shares}, indent=1) + "\n")


if __name__ == "__main__":
    main()
