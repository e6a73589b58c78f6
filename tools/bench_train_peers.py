#!/usr/bin/env python3
"""hd-distill's training throughput against PyTorch CPU, by hand (never in CI).

Two steps can be measured (`--step`):

mlm (the default): the masked-LM warm-up step on splade-tiny.

    swift build -c release --product hd-distill && bash tools/fetch-models.sh splade-tiny
    OPENBLAS_CORETYPE=Haswell .venv-torch/bin/python tools/bench_train_peers.py --step mlm --threads 2 \
        [--batch 16] [--seq-len 128] [--steps 20] [--rounds 3] [--out bench_train_peers.json]

  One optimiser step = masked-LM forward + backward + gradient clipping (norm 1) + AdamW (β 0.9/0.999,
  ε 1e-6, weight decay 0.01) over a batch of `--batch` sequences of `--seq-len` tokens, 15 % of the
  non-special positions masked per sequence (80 % [MASK], 10 % random, 10 % kept), as hd-distill does.
  Model: splade-tiny (.cache/models/splade-tiny), loaded by transformers as BertForMaskedLM. Sides:
  hd-distill --mlm-only; torch with transformers' head (logits for every position, loss over the
  masked ones); torch with the MLM head on the masked rows only (what hd-distill computes).

distill: the HomoDistil step with a headless teacher, at one of two shapes (`--shape`):

    swift build -c release --product hd-distill && bash tools/fetch-models.sh minilm
    OPENBLAS_CORETYPE=Haswell .venv-torch/bin/python tools/bench_train_peers.py --step distill --shape minilm \
        --threads 1 --steps 20 --rounds 3 --out bench_distill_minilm_t1.json          # and --threads 2
    OPENBLAS_CORETYPE=Haswell .venv-torch/bin/python tools/bench_train_peers.py --step distill --shape bert-base \
        --threads 1 --steps 10 --rounds 3 --out bench_distill_bertbase_t1.json        # and --threads 2

  minilm: teacher the real all-MiniLM-L6-v2 (.cache/models/minilm: 6 layers × 384, 12 heads, FFN 1536,
  no MLM head), student a copy of it pruned towards hidden 192 / FFN 768 (`--hidden 192 --ffn 768`,
  head size kept). bert-base: a random BERT-base-shaped teacher (12 × 768, 12 heads, FFN 3072, vocab
  30522, BERT's N(0, 0.02) initialisation, seed 0, no MLM head), written once to
  .cache/models/bert-base-random (config.json, model.safetensors, minilm's vocabulary), student pruned
  towards 384 / 1536 (half width). Both sides load the same teacher file.

  One optimiser step, as hd-distill computes it for a headless teacher (Trainer.optimiserStep with
  the default weights: α_hidden = α_attention = α_embedding = α_pooled = 1, no MLM, no KL):
    1. teacher forward, no gradient: embeddings' output E_t, every layer's output H_t^l, every
       layer's attention probabilities A_t^l;
    2. student forward (full width with zeroed pruned weights; LayerNorms over the kept hidden
       dimensions once any is pruned), the same outputs, kept for the backward;
    3. loss = MSE(E_s, E_t W_eᵀ) + Σ_l MSE(H_s^l, H_t^l W_lᵀ)  (learnable d × d projections, identity
       at step 0; the MSE over kept hidden dimensions only)
            + Σ_l MSE(A_s^l, A_t^l)                            (every probability)
            + mean_b (1 − cos(meanpool(H_s^last), meanpool(H_t^last)))  (over kept dimensions);
    4. backward into the student's trainable tensors (embeddings, every layer; not the pooler, which
       takes no part) and the projections;
    5. the pruner (HomoDistil's cubic schedule, PLATON importance): while t ≤ prune-end, per weight
       I = |θ·∇θ|, Ī ← 0.85 Ī + 0.15 I, Ū ← 0.95 Ū + 0.05 |I − Ī|; on the schedule's steps the unit
       scores (Σ Ī·Ū over each unit's rows and columns), top-k per group among the kept units (widths
       on the cubic curve, rounded up to multiples of 8), and the newly pruned weights, Adam moments
       and Ī/Ū zeroed; once anything is pruned, the pruned gradients zeroed;
    6. global gradient clipping to norm 1 (student and projections together);
    7. AdamW (β 0.9/0.999, ε 1e-6, decay 0.01 on matrices only, none on the projections), learning
       rate 5e-4 decaying linearly to 0 over the run.
  Batch `--batch` × `--seq-len` (default 16 × 128) packed sequences of real text ([CLS] + tokens +
  [SEP], no padding). Schedule: the run is `--warmup-steps` + `--steps` long, and both sides use
  hd-distill's defaults for that length (prune-start = 10 %, prune-end = 70 %, every 10 steps),
  passed to hd-distill explicitly; both sides' step t is the same point of the schedule.

  torch side (`distill_torch_worker`): plain eager PyTorch; the teacher and the student are
  transformers' BertModel (add_pooling_layer=False; its nn.Linear/nn.Embedding modules and weights)
  but the forward is written out here, so that the attention probabilities and hidden states come
  out without hooks and the student's LayerNorms can be masked like hd-distill's; the teacher runs
  under torch.no_grad (nothing kept for a backward); torch's fused AdamW (three parameter groups:
  matrices decayed, vectors and projections not); clip_grad_norm_ over the student and the
  projections; the pruner in per-tensor torch ops. Attention is eager (softmax(q·kᵀ)·v with q
  pre-scaled, as nn.MultiheadAttention does): scaled_dot_product_attention would be cheaper but does
  not return the probabilities the attention term needs, and hd-distill materialises them too.
  Differences, all small next to the matrix products:
    - hd-distill computes the gradient norm twice (a finiteness check before the pruner, then
      clipping after it); torch once (clip_grad_norm_, after the pruner);
    - hd-distill applies the (all-zero) additive key mask inside its softmax; torch skips it, since
      packed sequences have no padding;
    - hd-distill's pruner passes and masked LayerNorms are fused loops; torch's are several
      element-wise passes per tensor (how one writes them in PyTorch without a custom kernel); its
      masked LayerNorm is used only once a hidden dimension is pruned, F.layer_norm before, as
      hd-distill switches kernels. Measured at minilm shape, 1 thread, under load: the pruner takes
      0.03–0.08 s (hd-distill, its log's prune_seconds) and 0.06–0.09 s (torch) of a 1.5–3.5 s step
      while importance is accumulated, 0.16–0.18 s on both at a mask update, 0.01 s after prune-end;
    - the teacher's forward in hd-distill writes the same activation buffers a student's does
      (it is the same forward), torch's keeps nothing;
    - the data order (hd-distill: its shuffled packed sequences of the whole corpus; torch: packed
      sequences of the corpus's first paragraphs in a random order, same tokenizer) — same shapes,
      same arithmetic.
  Check that both do the same work: `--check-flops` (torch's counted matrix-product FLOPs equal
  `distill_flops` exactly, 192.1 GFLOP a step at minilm shape, 1,493 GFLOP at bert-base), and the
  per-step loss terms printed under the table. At step 1 every term is 0 on both sides (the student
  is the teacher and the projections are the identity; the gradients are rounding noise, which Adam
  turns into full-size first updates, so the next two or three steps differ between the sides);
  from the first steps at the pruned widths the terms agree to within about 10 % (hidden, attention,
  embedding) and 20 % (1 − cos).

Products in bf16 (`--matmul bf16`, both steps): hd-distill runs with `--matmul bf16` (every product
on bf16 operands with f32 sums, AMX tiles), torch under `torch.autocast("cpu", dtype=torch.bfloat16)`
around the forward and the losses (its linear layers and batched products in bf16 through oneDNN,
the rest as autocast decides), and torch without autocast (fp32) runs beside them in every round, so
one table holds hd-distill's bf16 against both. Fused AdamW and the f32 weights as in fp32.

Timing, both steps: every round runs each side once, one after the other, each in its own process
with the same thread count (`--threads`, OpenBLAS/ours and torch.set_num_threads; interop 1).
  - hd-distill runs `--warmup-steps` + `--steps` optimiser steps with evaluation and saving off
    (--held-out-every 0 --eval-every 0 --save-every 0: the only checkpoint is written after the last
    step); its tokens/s is `--steps` × batch × length over the summed `step_seconds` of the last
    `--steps` records of its --log (so loading, tokenising, the untimed warm-up steps and the final
    checkpoint are not timed). In mlm mode, as before, the summary record over all steps (no warm-up).
  - torch runs `--warmup-steps` untimed steps, then times `--steps`.
Peak RSS: VmHWM. torch: its own, after the timed steps. hd-distill in distill mode: read from
/proc/PID/status by this script when the log shows the last step started (the final checkpoint
copies weights and moments, which would otherwise count); in mlm mode the summary's (process end).
Medians over rounds; prints a table and writes JSON (`--out`).

GFLOP/s (distill): the step's matrix-product FLOPs, counted for the shape (`distill_flops`):
per token and layer a forward costs 2·(4d² + 2·d·f) for the six linears plus 2·2·L·d for QKᵀ and
P·V (d hidden, f FFN, L sequence length); the teacher's forward once, the student's forward and
backward three times (the backward is a dX and a dW product per forward product), and each of the
1 + layers projections 2·d² forward plus 2·d² for its dW (the teacher states need no gradient):
  FLOPs/step = B·L·(4·layers·(8d² + 4df + 4Ld) + 4d²·(layers + 1)).
The count is the full-width step's: the torch step multiplies its masked student at full width,
zeros included; hd-distill multiplies only a pruned student's kept units (`KeptUnits`: the same
values), so once the schedule has pruned, its figure is an effective rate — the work the step stands
for over its time — not what its kernels did. `--check-flops` runs one torch step under
torch.utils.flop_counter.FlopCounterMode and prints its count beside this one. Element-wise work
(softmax, GELU, LayerNorm, the losses, the pruner, AdamW) is not counted. Beside it, the share of
the FMA peak of the same cores, as `hd-infer bench --roofline` measures and reports it right after
the rounds (`--hd-infer`).
"""
import argparse
import copy
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / ".cache/models/splade-tiny"
SHAPES = {
    # teacher directory, student widths (hidden, FFN); head size is kept
    "minilm": {"teacher": REPO / ".cache/models/minilm", "hidden": 192, "ffn": 768},
    "bert-base": {"teacher": REPO / ".cache/models/bert-base-random", "hidden": 384, "ffn": 1536},
}


def peak_rss_mib(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------
# mlm: the masked-LM step on splade-tiny

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


def adamw(torch, groups):
    """torch's fused CPU AdamW when this build has it, else the default implementation."""
    try:
        return torch.optim.AdamW(groups, lr=5e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, fused=True), True
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=5e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01), False


def mlm_torch_worker(args) -> None:
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
    optimiser, fused = adamw(torch, model.parameters())
    config = model.config
    special = {"cls": 101, "sep": 102, "mask": 103}
    generator = torch.Generator().manual_seed(0)
    batches = [masked_batch(torch, generator, args.batch, args.seq_len, config.vocab_size, special)
               for _ in range(4)]
    attention = torch.ones(args.batch, args.seq_len, dtype=torch.long)

    def step(ids, labels):
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.matmul == "bf16"):
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

    for i in range(args.warmup_steps):
        step(*batches[i % len(batches)])
    start = time.perf_counter()
    for i in range(args.steps):
        step(*batches[i % len(batches)])
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": args.steps * args.batch * args.seq_len / seconds,
                      "seconds": seconds, "peak_rss_mib": peak_rss_mib(), "fused_adamw": fused,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


def run_ours_mlm(args, work: Path) -> dict:
    log = work / "hd.jsonl"
    cmd = [str(args.hd_distill), str(MODEL), "--mlm-only", "--corpus", *args.corpus, "-o", str(work / "hd.ckpt"),
           "--steps", str(args.steps), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
           "--threads", str(args.threads), "--held-out-every", "0", "--eval-every", "0", "--save-every", "0",
           "--log", str(log), "--matmul", args.matmul]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    summary = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert summary["kind"] == "summary", summary
    return {"tokens_per_second": summary["tokens_per_second"], "peak_rss_mib": summary["peak_rss_mib"],
            "seconds": summary["train_seconds"]}


# ---------------------------------------------------------------------------------------------
# distill: the HomoDistil step with a headless teacher

def prune_schedule(total: int) -> dict:
    """hd-distill's default cubic schedule for a run of `total` steps (PruningFlags.options)."""
    start = total // 10
    return {"start": start, "end": max(start + 1, total * 7 // 10), "every": 10}


def updates_masks(t: int, s: dict) -> bool:
    """PruneSchedule.updatesMasks (cubic), t 1-based."""
    return s["start"] < t <= s["end"] and ((t - s["start"]) % s["every"] == 0 or t == s["end"])


def kept_units(t: int, size: int, target: int, multiple: int, s: dict) -> int:
    """PruneSchedule.kept (cubic): units per block kept at step t."""
    if t <= s["start"]:
        return size
    if t >= s["end"]:
        return target
    remaining = 1 - (t - s["start"]) / (s["end"] - s["start"])
    exact = target + (size - target) * remaining ** 3
    return min(size, max(target, math.ceil(exact / multiple) * multiple))


def distill_flops(layers: int, d: int, f: int, length: int, tokens: int) -> int:
    """Matrix-product FLOPs of one distillation step (see the module docstring)."""
    forward = 8 * d * d + 4 * d * f + 4 * length * d  # per token and layer
    return tokens * (4 * layers * forward + 4 * d * d * (layers + 1))


def make_random_teacher(path: Path) -> None:
    """A BERT-base-shaped encoder without a head: BERT's initialisation (transformers' BertModel,
    torch seed 0), written as a Hugging Face directory both sides load, with minilm's vocabulary."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    source = SHAPES["minilm"]["teacher"]
    config = json.loads((source / "config.json").read_text())
    config.update({"_name_or_path": "bert-base-random (tools/bench_train_peers.py)", "hidden_size": 768,
                   "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072})
    torch.manual_seed(0)
    model = BertModel(BertConfig(**{k: v for k, v in config.items() if not k.startswith("_")}))
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    for name in ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(source / name, tmp / name)
    tmp.rename(path)


def packed_sequences(torch, tokenizer, files, length: int, count: int, seed: int):
    """`count` packed sequences as hd-distill's Corpus cuts them ([CLS] + length − 2 tokens of the
    paragraphs' word pieces, each paragraph closed by [SEP], + [SEP]), from the first paragraphs of
    `files`, in a random order."""
    need = count * (length - 2)
    stream = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            paragraph = []
            for line in f:
                if line.strip():
                    paragraph.append(line.strip())
                    continue
                if paragraph:
                    stream += tokenizer(" ".join(paragraph), add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
                    paragraph = []
                if len(stream) >= need:
                    break
        if len(stream) >= need:
            break
    if len(stream) < need:
        stream = (stream * (need // max(len(stream), 1) + 1))
    body = torch.tensor(stream[:need]).view(count, length - 2)
    ids = torch.cat([torch.full((count, 1), tokenizer.cls_token_id), body, torch.full((count, 1), tokenizer.sep_token_id)], 1)
    return ids[torch.randperm(count, generator=torch.Generator().manual_seed(seed))]


def distill_torch_worker(args) -> None:
    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer, BertModel

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    shape = SHAPES[args.shape]
    teacher = BertModel.from_pretrained(str(shape["teacher"]), add_pooling_layer=False)
    config = teacher.config
    # Exact GELU, as hd-distill runs "gelu" (the configs here say "gelu").
    assert config.hidden_act == "gelu", config.hidden_act
    student = copy.deepcopy(teacher)
    teacher.eval()
    teacher.requires_grad_(False)
    student.train()
    B, L, d, H = args.batch, args.seq_len, config.hidden_size, config.num_attention_heads
    layers, f, dh = config.num_hidden_layers, config.intermediate_size, config.hidden_size // config.num_attention_heads
    eps, scale = config.layer_norm_eps, 1 / math.sqrt(dh)

    # Masks: 1 kept, 0 pruned (PruneMasks' groups). Pruned weights are zero, so only the LayerNorms
    # need the hidden mask in the forward; it also restricts the hidden/embedding MSE and the cosine.
    masks = {"hidden": torch.ones(d)}
    for l in range(layers):
        masks[f"qk.{l}"], masks[f"value.{l}"], masks[f"ffn.{l}"] = torch.ones(d), torch.ones(d), torch.ones(f)
    blocks = {g: (H if g.startswith(("qk", "value")) else 1) for g in masks}
    targets = {g: (shape["hidden"] if g == "hidden" else shape["ffn"] if g.startswith("ffn") else dh * H) // blocks[g]
               for g in masks}
    multiples = {g: (1 if blocks[g] > 1 else 8) for g in masks}
    hidden_pruned = False  # LayerNorms use the unmasked kernel until a hidden dimension goes

    def layer_norm(x, ln, masked: bool):
        if not (masked and hidden_pruned):
            return F.layer_norm(x, (d,), ln.weight, ln.bias, eps)
        keep = masks["hidden"]
        kept = keep.sum()
        mean = (x * keep).sum(-1, keepdim=True) / kept
        centred = (x - mean) * keep
        var = (centred * centred).sum(-1, keepdim=True) / kept
        return centred * torch.rsqrt(var + eps) * ln.weight + ln.bias

    def forward(model, ids, types, additive):
        """Hidden states [embeddings' output, each layer's] and each layer's attention probabilities;
        the student's LayerNorms are masked, the teacher's are not."""
        masked = model is student
        e = model.embeddings
        x = e.word_embeddings(ids) + e.position_embeddings.weight[:L] + e.token_type_embeddings(types)
        x = layer_norm(x, e.LayerNorm, masked)
        hidden, probs = [x], []
        for layer in model.encoder.layer:
            a = layer.attention
            q = (a.self.query(x) * scale).view(B, L, H, dh).transpose(1, 2)
            k = a.self.key(x).view(B, L, H, dh).transpose(1, 2)
            v = a.self.value(x).view(B, L, H, dh).transpose(1, 2)
            scores = q @ k.transpose(-1, -2)
            p = torch.softmax(scores if additive is None else scores + additive, dim=-1)
            context = (p @ v).transpose(1, 2).reshape(B, L, d)
            x = layer_norm(a.output.dense(context) + x, a.output.LayerNorm, masked)
            inner = F.gelu(layer.intermediate.dense(x))
            x = layer_norm(layer.output.dense(inner) + x, layer.output.LayerNorm, masked)
            hidden.append(x)
            probs.append(p)
        return hidden, probs

    # The projections W_e, W_1 … W_layers: d × d, identity at step 0, trained, not decayed.
    projections = torch.nn.ParameterList([torch.nn.Parameter(torch.eye(d)) for _ in range(layers + 1)])

    def masked_mse(s, t):
        if not hidden_pruned:
            return F.mse_loss(s, t)
        keep = masks["hidden"]
        diff = (s - t) * keep
        return (diff * diff).sum() / (s.numel() // d * keep.sum())

    def losses(ids, types, attention):
        # Packed sequences have no padding: the additive key mask is skipped when it is all zeros.
        additive = None if bool(attention.all()) else (1.0 - attention[:, None, None, :].float()) * torch.finfo(torch.float32).min
        with torch.no_grad():
            t_hidden, t_probs = forward(teacher, ids, types, additive)
        s_hidden, s_probs = forward(student, ids, types, additive)
        projected = [t @ w.t() for t, w in zip(t_hidden, projections)]
        embedding = masked_mse(s_hidden[0], projected[0])
        hidden = sum(masked_mse(s, t) for s, t in zip(s_hidden[1:], projected[1:]))
        attention_term = sum(F.mse_loss(s, t) for s, t in zip(s_probs, t_probs))
        real = attention.unsqueeze(-1).float()
        keep = masks["hidden"]
        s_pool = (s_hidden[-1] * real).sum(1) / real.sum(1) * keep
        t_pool = (t_hidden[-1] * real).sum(1) / real.sum(1) * keep
        cos = (s_pool * t_pool).sum(-1) / (s_pool.norm(dim=-1).clamp_min(1e-12) * t_pool.norm(dim=-1).clamp_min(1e-12))
        pooled = (1 - cos).mean()
        return embedding, hidden, attention_term, pooled

    # PruneMasks.couplings for a headless BertModel: the mask group of each tensor's rows and columns.
    couplings = []
    named = dict(student.named_parameters())
    for name in ["word_embeddings", "position_embeddings", "token_type_embeddings"]:
        couplings.append((named[f"embeddings.{name}.weight"], None, "hidden"))
    couplings += [(named["embeddings.LayerNorm.weight"], "hidden", None), (named["embeddings.LayerNorm.bias"], "hidden", None)]
    for l in range(layers):
        p = f"encoder.layer.{l}."
        for sub, rows, cols in [("attention.self.query", f"qk.{l}", "hidden"), ("attention.self.key", f"qk.{l}", "hidden"),
                                ("attention.self.value", f"value.{l}", "hidden"), ("attention.output.dense", "hidden", f"value.{l}"),
                                ("attention.output.LayerNorm", "hidden", None), ("intermediate.dense", f"ffn.{l}", "hidden"),
                                ("output.dense", "hidden", f"ffn.{l}"), ("output.LayerNorm", "hidden", None)]:
            couplings.append((named[p + sub + ".weight"], rows, cols))
            couplings.append((named[p + sub + ".bias"], rows, None))
    assert len(couplings) == len(named), "every trainable tensor has a coupling"
    importance_mean = [torch.zeros_like(w) for w, _, _ in couplings]
    importance_uncertainty = [torch.zeros_like(w) for w, _, _ in couplings]

    def zero_pruned(tensor, rows, cols):
        if rows is not None:
            tensor.mul_(masks[rows].view(-1, *([1] * (tensor.dim() - 1))))
        if cols is not None:
            tensor.mul_(masks[cols])

    def prune(t: int, schedule: dict) -> bool:
        """Pruner.afterBackward: importance, masks on the schedule, pruned gradients zeroed."""
        nonlocal hidden_pruned
        if t <= schedule["end"]:
            for (w, _, _), mean, uncertainty in zip(couplings, importance_mean, importance_uncertainty):
                current = (w.detach() * w.grad).abs_()
                mean.mul_(0.85).add_(current, alpha=0.15)
                uncertainty.mul_(0.95).add_(current.sub_(mean).abs_(), alpha=0.05)
        changed = False
        if updates_masks(t, schedule):
            scores = {g: torch.zeros(len(m), dtype=torch.float64) for g, m in masks.items()}
            for (w, rows, cols), mean, uncertainty in zip(couplings, importance_mean, importance_uncertainty):
                s = mean * uncertainty
                if rows is not None:
                    scores[rows] += (s.sum(1) if s.dim() == 2 else s).double()
                if cols is not None:
                    scores[cols] += s.sum(0).double()
            for g, flags in masks.items():
                k, per = kept_units(t, len(flags) // blocks[g], targets[g], multiples[g], schedule), len(flags) // blocks[g]
                for b in range(blocks[g]):
                    kept = torch.nonzero(flags[b * per:(b + 1) * per]).flatten() + b * per
                    if len(kept) > k:
                        ranked = torch.sort(scores[g][kept], descending=True, stable=True).indices
                        flags[kept[ranked[k:]]] = 0
                        changed = True
            if changed:
                with torch.no_grad():
                    for (w, rows, cols), mean, uncertainty in zip(couplings, importance_mean, importance_uncertainty):
                        state = optimiser.state.get(w, {})
                        moments = [state[key] for key in ("exp_avg", "exp_avg_sq") if key in state]
                        for tensor in [w, mean, uncertainty] + moments:
                            zero_pruned(tensor, rows, cols)
                hidden_pruned = bool((masks["hidden"] == 0).any())
        if any(bool((m == 0).any()) for m in masks.values()):
            for w, rows, cols in couplings:
                zero_pruned(w.grad, rows, cols)
        return changed

    decayed = [w for w in student.parameters() if w.dim() > 1]
    undecayed = [w for w in student.parameters() if w.dim() <= 1]
    optimiser, fused = adamw(torch, [{"params": decayed}, {"params": undecayed, "weight_decay": 0.0},
                                     {"params": list(projections), "weight_decay": 0.0}])
    every_parameter = list(student.parameters()) + list(projections)

    total = args.warmup_steps + args.steps
    schedule = prune_schedule(total)
    tokenizer = AutoTokenizer.from_pretrained(str(shape["teacher"]))
    sequences = packed_sequences(torch, tokenizer, args.corpus, L, B * total, seed=0)
    types = torch.zeros(B, L, dtype=torch.long)
    attention = torch.ones(B, L, dtype=torch.long)

    def step(t: int) -> dict:
        ids = sequences[(t - 1) * B:t * B]
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.matmul == "bf16"):
            embedding, hidden, attention_term, pooled = losses(ids, types, attention)
            loss = embedding + hidden + attention_term + pooled
        loss.backward()
        prune(t, schedule)
        norm = torch.nn.utils.clip_grad_norm_(every_parameter, 1.0)
        lr = 5e-4 * (total - (t - 1)) / total  # LRSchedule without warm-up, update s = t − 1
        for group in optimiser.param_groups:
            group["lr"] = lr
        optimiser.step()
        return {"step": t, "loss": loss.item(), "embedding": embedding.item(), "hidden": hidden.item(),
                "attention": attention_term.item(), "pooled": pooled.item(), "grad_norm": norm.item(),
                "width_hidden": int(masks["hidden"].sum()), "width_ffn": int(masks["ffn.0"].sum())}

    if args.check_flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step(1)
        counted = counter.get_total_flops()
        expected = distill_flops(layers, d, f, L, B * L)
        print(json.dumps({"torch_counted_flops": counted, "distill_flops": expected, "ratio": counted / expected}))
        return

    records = [step(t) for t in range(1, args.warmup_steps + 1)]
    start = time.perf_counter()
    for t in range(args.warmup_steps + 1, total + 1):
        began = time.perf_counter()
        records.append(step(t) | {"step_seconds": time.perf_counter() - began})
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens_per_second": args.steps * B * L / seconds, "seconds": seconds,
                      "peak_rss_mib": peak_rss_mib(), "fused_adamw": fused, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "records": records}))


def run_ours_distill(args, work: Path) -> dict:
    shape = SHAPES[args.shape]
    total = args.warmup_steps + args.steps
    schedule = prune_schedule(total)
    log = work / "hd.jsonl"
    log.unlink(missing_ok=True)
    cmd = [str(args.hd_distill), str(shape["teacher"]), "--corpus", *args.corpus, "-o", str(work / "hd.ckpt"),
           "--steps", str(total), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
           "--hidden", str(shape["hidden"]), "--ffn", str(shape["ffn"]),
           "--prune-start", str(schedule["start"]), "--prune-end", str(schedule["end"]),
           "--prune-every", str(schedule["every"]),
           "--threads", str(args.threads), "--held-out-every", "0", "--eval-every", "0", "--save-every", "0",
           "--log", str(log), "--matmul", args.matmul]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # VmHWM once the last step has started (the record of step total − 1 is written): the training
    # peak, before the final checkpoint copies the weights and moments.
    peak = float("nan")
    while process.poll() is None:
        if math.isnan(peak) and log.exists():
            done = sum(json.loads(line)["kind"] == "train" for line in log.read_text().splitlines() if line.endswith("}"))
            if done >= max(total - 1, 1):
                try:
                    peak = peak_rss_mib(str(process.pid))
                except (FileNotFoundError, ProcessLookupError):
                    pass
        time.sleep(0.05)
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"hd-distill failed ({process.returncode}): {' '.join(cmd)}\n{stderr}")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    train = [r for r in lines if r["kind"] == "train"]
    summary = lines[-1]
    assert summary["kind"] == "summary" and len(train) == total, (summary, len(train))
    timed = train[args.warmup_steps:]
    seconds = sum(r["step_seconds"] for r in timed)
    keys = ["step", "loss", "embedding", "hidden", "attention", "pooled", "grad_norm", "width_hidden", "width_ffn", "prune_seconds",
            "step_seconds"]
    return {"tokens_per_second": len(timed) * args.batch * args.seq_len / seconds, "seconds": seconds,
            "peak_rss_mib": peak, "peak_rss_mib_at_exit": summary["peak_rss_mib"],
            "tokens_per_second_all_steps": summary["tokens_per_second"],
            "records": [{k: r[k] for k in keys if k in r} for r in train]}


# ---------------------------------------------------------------------------------------------

def roofline(args) -> dict:
    """The peaks of `--threads` cores as the runtime measures and reports them (`hd-infer bench
    --roofline`: AVX-512 FMAs alone, median of 7 runs on every worker; the AMX tiles' bf16 peak where
    the CPU has them), timed right after the rounds; empty without hd-infer."""
    if not args.hd_infer.exists():
        return {}
    out = subprocess.run([str(args.hd_infer), "bench", "--shape", "64x256x1x1", "--batch", "1", "--seq-len", "8",
                          "--warmup", "1", "--iterations", "3", "--roofline", "--json", "--threads", str(args.threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out).get("roofline") or {}


def run_torch(args, worker: str, matmul: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--torch-worker", worker, "--step", args.step, "--shape", args.shape,
           "--matmul", matmul or args.matmul,
           "--threads", str(args.threads), "--batch", str(args.batch), "--seq-len", str(args.seq_len),
           "--steps", str(args.steps), "--warmup-steps", str(args.warmup_steps), "--corpus", *args.corpus]
    if args.check_flops:
        cmd.append("--check-flops")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--step", choices=["mlm", "distill"], default="mlm")
    p.add_argument("--shape", choices=sorted(SHAPES), default="minilm", help="distill only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before them (each side)")
    p.add_argument("--rounds", type=int, default=3)
    # ../shared's Austen where it is at hand, else the bundled demo novel (a fresh clone has no ../shared).
    austen = REPO.parent / "shared/data/text/janeausten.txt"
    p.add_argument("--corpus", nargs="+",
                   default=[str(austen if austen.exists() else REPO / "data/demo/northanger-abbey.txt")])
    p.add_argument("--hd-distill", type=Path, default=REPO / ".build/release/hd-distill")
    p.add_argument("--hd-infer", type=Path, default=REPO / ".build/release/hd-infer", help="measures the FMA peak (distill)")
    p.add_argument("--out", type=Path, default=Path("bench_train_peers.json"))
    p.add_argument("--matmul", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: hd-distill --matmul bf16 against torch under torch.autocast('cpu', torch.bfloat16), "
                        "and torch in fp32 beside them")
    p.add_argument("--check-flops", action="store_true",
                   help="distill: count one torch step's FLOPs with FlopCounterMode against distill_flops, and stop")
    p.add_argument("--torch-worker", choices=["hf", "masked", "distill"], help=argparse.SUPPRESS)
    p.add_argument("--make-teacher", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make_teacher:
        make_random_teacher(args.make_teacher)
        return
    if args.torch_worker == "distill":
        distill_torch_worker(args)
        return
    if args.torch_worker:
        mlm_torch_worker(args)
        return
    if args.step == "distill":
        distill_main(args)
    else:
        mlm_main(args)


def mlm_main(args) -> None:
    runs = {"hd-distill": [], "torch (HF head, all positions)": [], "torch (head on masked rows)": []}
    if args.matmul == "bf16":
        runs["torch (head on masked rows), fp32"] = []
    load = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            load.append(os.getloadavg()[0])
            runs["hd-distill"].append(run_ours_mlm(args, Path(tmp)))
            runs["torch (HF head, all positions)"].append(run_torch(args, "hf"))
            runs["torch (head on masked rows)"].append(run_torch(args, "masked"))
            if args.matmul == "bf16":
                runs["torch (head on masked rows), fp32"].append(run_torch(args, "masked", "fp32"))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k} {v[-1]['tokens_per_second']:.0f} tok/s" for k, v in runs.items()), file=sys.stderr)
    load.append(os.getloadavg()[0])

    summary = {k: {"tokens_per_second": statistics.median(x["tokens_per_second"] for x in v),
                   "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in v),
                   "samples": [round(x["tokens_per_second"], 1) for x in v]} for k, v in runs.items()}
    ours = summary["hd-distill"]["tokens_per_second"]
    torch_note = " (torch: autocast to bf16, but where the row says fp32)" if args.matmul == "bf16" else ""
    print(f"\nsplade-tiny MLM training, products in {args.matmul}{torch_note}, "
          f"batch {args.batch} × {args.seq_len}, {args.threads} threads, "
          f"{args.steps} steps × {args.rounds} rounds (load average {min(load):.2f}–{max(load):.2f})\n")
    print("| runtime | tokens/s (median) | hd-distill ÷ it | peak RSS MiB |")
    print("|---|---|---|---|")
    for k, v in summary.items():
        print(f"| {k} | {v['tokens_per_second']:.0f} | {ours / v['tokens_per_second']:.2f}× | {v['peak_rss_mib']:.0f} |")
    torch_info = runs["torch (head on masked rows)"][0]
    result = {"step": "mlm", "matmul": args.matmul, "hd_distill": str(args.hd_distill), "model": "splade-tiny", "batch": args.batch, "seq_len": args.seq_len, "threads": args.threads,
              "steps": args.steps, "warmup_steps_torch": args.warmup_steps, "rounds": args.rounds, "load_average": load,
              "torch": torch_info.get("torch"), "fused_adamw": torch_info.get("fused_adamw"), "runs": summary}
    args.out.write_text(json.dumps(result, indent=1))


def distill_main(args) -> None:
    shape = SHAPES[args.shape]
    if not shape["teacher"].exists():
        if args.shape != "bert-base":
            sys.exit(f"{shape['teacher']}: missing; run bash tools/fetch-models.sh minilm")
        print(f"writing the random BERT-base teacher to {shape['teacher']}", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--make-teacher", str(shape["teacher"])], check=True)
    config = json.loads((shape["teacher"] / "config.json").read_text())
    layers, d, f = config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"]
    flops = distill_flops(layers, d, f, args.seq_len, args.batch * args.seq_len)
    if args.check_flops:
        counted = run_torch(args, "distill")
        print(json.dumps(counted))
        return

    # With --matmul bf16, "torch" is torch under bf16 autocast and "torch fp32" the fp32 step beside it.
    runs = {"hd-distill": [], "torch": []} | ({"torch fp32": []} if args.matmul == "bf16" else {})
    load = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            load.append(os.getloadavg()[0])
            runs["hd-distill"].append(run_ours_distill(args, Path(tmp)))
            runs["torch"].append(run_torch(args, "distill"))
            if args.matmul == "bf16":
                runs["torch fp32"].append(run_torch(args, "distill", "fp32"))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{k} {v[-1]['tokens_per_second']:.0f} tok/s" for k, v in runs.items()), file=sys.stderr)
    load.append(os.getloadavg()[0])
    peaks = roofline(args)
    peak = peaks.get("fma_peak_gflops_per_s")
    # bf16 products: their rate against the tiles' bf16 peak too (against the FMA peak it passes 100 %).
    tiles = peaks.get("amx_bf16_peak_gflops_per_s") if args.matmul == "bf16" else None

    tokens_per_step = args.batch * args.seq_len
    summary = {}
    for k, v in runs.items():
        tps = statistics.median(x["tokens_per_second"] for x in v)
        gflops = tps / tokens_per_step * flops / 1e9
        summary[k] = {"tokens_per_second": tps, "gflops_per_second": gflops,
                      "fraction_of_fma_peak": gflops / peak if peak else None,
                      "fraction_of_amx_bf16_peak": gflops / tiles if tiles else None,
                      "peak_rss_mib": statistics.median(x["peak_rss_mib"] for x in v),
                      "samples": [round(x["tokens_per_second"], 1) for x in v]}
    summary["hd-distill"]["peak_rss_mib_at_exit"] = statistics.median(x["peak_rss_mib_at_exit"] for x in runs["hd-distill"])
    ratio = summary["hd-distill"]["tokens_per_second"] / summary["torch"]["tokens_per_second"]
    total = args.warmup_steps + args.steps
    products = "bf16 (torch: bf16 autocast; torch fp32: none)" if args.matmul == "bf16" else "fp32"
    print(f"\ndistillation step, products in {products}, {args.shape} shape ({layers} × {d}, FFN {f}; student pruned towards "
          f"{shape['hidden']}/{shape['ffn']}), batch {args.batch} × {args.seq_len}, {args.threads} threads, "
          f"{args.warmup_steps} + {args.steps} timed steps × {args.rounds} rounds "
          f"(load average {min(load):.2f}–{max(load):.2f}); {flops / 1e9:.1f} GFLOP of matrix products a step\n")
    print(f"FMA peak of {args.threads} core(s), as `hd-infer bench --roofline` measures it right after: "
          + (f"{peak:.1f} GFLOP/s" if peak else "unavailable (no AVX-512F)")
          + (f"; the AMX tiles' bf16 peak {tiles:.0f} GFLOP/s (last column)\n" if tiles else "\n"))
    print("| runtime | tokens/s (median) | GFLOP/s | of the FMA peak | hd-distill ÷ it | peak RSS MiB |"
          + (" of the AMX bf16 peak |" if tiles else ""))
    print("|---|---|---|---|---|---|" + ("---|" if tiles else ""))
    for k, v in summary.items():
        fraction = f"{100 * v['fraction_of_fma_peak']:.0f} %" if peak else "—"
        print(f"| {k} | {v['tokens_per_second']:.0f} | {v['gflops_per_second']:.1f} | {fraction} | "
              f"{summary['hd-distill']['tokens_per_second'] / v['tokens_per_second']:.2f}× | {v['peak_rss_mib']:.0f} |"
              + (f" {100 * v['fraction_of_amx_bf16_peak']:.1f} % |" if tiles else ""))
    # The timed steps at full width and at the target widths (hd-distill multiplies only kept units).
    phases = {}
    for k, v in runs.items():
        for phase, width in [("full width", d), ("target widths", shape["hidden"])]:
            times = [r["step_seconds"] for r in v[-1]["records"][args.warmup_steps:]
                     if r.get("width_hidden") == width and "step_seconds" in r]
            if times:
                phases.setdefault(phase, {})[k] = {"steps": len(times), "median_step_seconds": statistics.median(times)}
    for phase, sides in phases.items():
        for peer in [k for k in sides if k != "hd-distill" and "hd-distill" in sides]:
            hd, pt = sides["hd-distill"]["median_step_seconds"], sides[peer]["median_step_seconds"]
            print(f"timed steps at {phase} (last round): hd-distill {hd:.3f} s, {peer} {pt:.3f} s a step "
                  f"(median of {sides['hd-distill']['steps']} / {sides[peer]['steps']}): {pt / hd:.2f}×")
    summary_phases = phases
    # Same work: the loss terms of the last round, step by step (they start at 0: the student is the teacher).
    print("\nlast round, per step (hd-distill / torch): loss, hidden, attention, embedding, 1 − cos, |g|, widths")
    for a, b in zip(runs["hd-distill"][-1]["records"], runs["torch"][-1]["records"]):
        print(f"  step {a['step']:3d}: " + "  ".join(
            f"{key} {a.get(key, float('nan')):.3g}/{b[key]:.3g}" for key in ["loss", "hidden", "attention", "embedding", "pooled", "grad_norm"])
            + f"  width {a.get('width_hidden')}/{a.get('width_ffn')} vs {b['width_hidden']}/{b['width_ffn']}")
    torch_info = runs["torch"][0]
    result = {"step": "distill", "matmul": args.matmul, "hd_distill": str(args.hd_distill), "shape": args.shape, "teacher": str(shape["teacher"]), "layers": layers, "hidden": d, "ffn": f,
              "target": {"hidden": shape["hidden"], "ffn": shape["ffn"]}, "batch": args.batch, "seq_len": args.seq_len,
              "threads": args.threads, "steps": args.steps, "warmup_steps": args.warmup_steps, "rounds": args.rounds,
              "prune_schedule": prune_schedule(total), "flops_per_step": flops, "load_average": load,
              "fma_peak_gflops_per_s": peak, "amx_bf16_peak_gflops_per_s": tiles, "phases_last_round": summary_phases,
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "torch": torch_info.get("torch"),
              "fused_adamw": torch_info.get("fused_adamw"), "ratio_hd_over_torch": ratio, "runs": summary,
              "records_last_round": {k: v[-1]["records"] for k, v in runs.items()}}
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
