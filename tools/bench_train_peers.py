#!/usr/bin/env python3
"""hd-distill's training throughput against PyTorch CPU, by hand (never in CI).

    swift build -c release --product hd-distill && bash tools/fetch-models.sh splade-tiny
    .venv-torch/bin/python tools/bench_train_peers.py [--threads 2] [--batch 16] [--seq-len 128] \
        [--steps 20] [--rounds 3] [--out bench_train_peers.json]

One optimiser step = masked-LM forward + backward + gradient clipping (norm 1) + AdamW (β 0.9/0.999,
ε 1e-6, weight decay 0.01) over a batch of `--batch` sequences of `--seq-len` tokens, 15 % of the
non-special positions masked per sequence (80 % [MASK], 10 % random, 10 % kept), as hd-distill does.
Model: splade-tiny (.cache/models/splade-tiny), loaded by transformers as BertForMaskedLM.

Runs, interleaved in every round, each in its own process with the same thread count:
  - hd-distill --mlm-only for `--steps` steps on real text; tokens/s from the summary record of its
    --log (optimiser steps only: loading, tokenising and the final checkpoint are not timed);
  - torch, HF head: BertForMaskedLM(input_ids, labels=...) as transformers runs it (logits for
    every position, loss over the masked ones);
  - torch, masked head: the same modules, but the MLM head only on the masked positions' hidden
    states (what hd-distill computes; the standard trick of BERT pre-training codebases).
Each torch worker runs 3 untimed warm-up steps, then times `--steps` steps. Peak RSS is VmHWM of each
process (/proc/self/status). Medians over rounds; prints a table and writes JSON.
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

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / ".cache/models/splade-tiny"


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def masked_batch(torch, generator, batch: int, length: int, vocab: int, special: dict):
    """Random ordinary ids framed by [CLS] … [SEP], masked like MLMMasking: exactly
    max(1, round(0.15 · n)) of the n non-special positions per sequence, 80/10/10."""
    ordinary_low = 999  # ids below are [PAD], [unused*], [UNK], [CLS], [SEP], [MASK] in bert-base's vocab
    ids = torch.randint(ordinary_low, vocab, (batch, length), generator=generator)
    ids[:, 0], ids[:, -1] = special["cls"], special["sep"]
    labels = torch.full_like(ids, -100)
    count = max(1, round(0.15 * (length - 2)))
    for b in range(batch):
        positions = 1 + torch.randperm(length - 2, generator=generator)[:count]
        labels[b, positions] = ids[b, positions]
        u = torch.rand(count, generator=generator)
        ids[b, positions[u < 0.8]] = special["mask"]
        random = positions[(u >= 0.8) & (u < 0.9)]
        ids[b, random] = torch.randint(ordinary_low, vocab, (len(random),), generator=generator)
    return ids, labels


def torch_worker(args) -> None:
    import torch
    from transformers import BertForMaskedLM

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = BertForMaskedLM.from_pretrained(str(MODEL))
    model.train()
    # Dropout off: hd-distill trains without it (HomoDistil's recipe), and it would cost torch time.
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    try:
        optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-6,
                                      weight_decay=0.01, fused=True)
        fused = True
    except (RuntimeError, TypeError):
        optimiser = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
        fused = False
    config = model.config
    special = {"cls": 101, "sep": 102, "mask": 103}
    generator = torch.Generator().manual_seed(0)
    batches = [masked_batch(torch, generator, args.batch, args.seq_len, config.vocab_size, special)
               for _ in range(4)]
    attention = torch.ones(args.batch, args.seq_len, dtype=torch.long)

    def step(ids, labels):
        optimiser.zero_grad(set_to_none=True)
        if args.torch_worker == "hf":
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        else:
            hidden = model.bert(input_ids=ids, attention_mask=attention).last_hidden_state
            rows = labels.view(-1) != -100
            logits = model.cls(hidden.view(-1, hidden.shape[-1])[rows])
            loss = torch.nn.functional.cross_entropy(logits, labels.view(-1)[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        return loss.item()

    for i in range(3):
        step(*batches[i % len(batches)])
    start = time.perf_counter()
    for i in range(args.steps):
        step(*batches[i % len(batches)])
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": args.steps * args.batch * args.seq_len / seconds,
                      "seconds": seconds, "peak_rss_mib": peak_rss_mib(), "fused_adamw": fused,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


def run_ours(args, work: Path) -> dict:
    log = work / "hd.jsonl"
    cmd = [str(args.hd_distill), str(MODEL), "--mlm-only", "--corpus", *args.corpus, "-o", str(work / "hd.ckpt"),
           "--steps", str(args.steps), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
           "--threads", str(args.threads), "--held-out-every", "0", "--eval-every", "0", "--save-every", "0",
           "--log", str(log)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    summary = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert summary["kind"] == "summary", summary
    return {"tokens_per_second": summary["tokens_per_second"], "peak_rss_mib": summary["peak_rss_mib"],
            "seconds": summary["train_seconds"]}


def run_torch(args, head: str) -> dict:
    cmd = [sys.executable, __file__, "--torch-worker", head, "--threads", str(args.threads), "--batch", str(args.batch),
           "--seq-len", str(args.seq_len), "--steps", str(args.steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--corpus", nargs="+", default=[str(REPO.parent / "shared/data/text/janeausten.txt")])
    p.add_argument("--hd-distill", type=Path, default=REPO / ".build/release/hd-distill")
    p.add_argument("--out", type=Path, default=Path("bench_train_peers.json"))
    p.add_argument("--torch-worker", choices=["hf", "masked"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        torch_worker(args)
        return

    runs = {"hd-distill": [], "torch (HF head, all positions)": [], "torch (head on masked rows)": []}
    load = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            load.append(os.getloadavg()[0])
            runs["hd-distill"].append(run_ours(args, Path(tmp)))
            runs["torch (HF head, all positions)"].append(run_torch(args, "hf"))
            runs["torch (head on masked rows)"].append(run_torch(args, "masked"))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k} {v[-1]['tokens_per_second']:.0f} tok/s" for k, v in runs.items()), file=sys.stderr)
    load.append(os.getloadavg()[0])

    summary = {k: {"tokens_per_second": statistics.median(x["tokens_per_second"] for x in v),
                   "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in v),
                   "samples": [round(x["tokens_per_second"], 1) for x in v]} for k, v in runs.items()}
    ours = summary["hd-distill"]["tokens_per_second"]
    print(f"\nsplade-tiny MLM training, batch {args.batch} × {args.seq_len}, {args.threads} threads, "
          f"{args.steps} steps × {args.rounds} rounds (load average {min(load):.2f}–{max(load):.2f})\n")
    print("| runtime | tokens/s (median) | hd-distill ÷ it | peak RSS MiB |")
    print("|---|---|---|---|")
    for k, v in summary.items():
        print(f"| {k} | {v['tokens_per_second']:.0f} | {ours / v['tokens_per_second']:.2f}× | {v['peak_rss_mib']:.0f} |")
    torch_info = runs["torch (head on masked rows)"][0]
    result = {"model": "splade-tiny", "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads,
              "steps": args.steps, "rounds": args.rounds, "load_average": load, "torch": torch_info.get("torch"),
              "fused_adamw": torch_info.get("fused_adamw"), "runs": summary}
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
