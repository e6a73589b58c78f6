"""HomoDistil on PyTorch: the recipe of `hd-distill` (Sources/HDDistill) for several processes or machines,
reading and writing the same files.

    torchrun --nproc_per_node N -- tools/torch/hd_distill.py TEACHER.safetensors -o student.ckpt \\
        --corpus corpus.tokens [hd-distill's flags]
    python tools/torch/hd_distill.py …             (one process)

(The `--` stops torchrun's own parser, which would take `--log` for an abbreviation of its `--log-dir`; on
CPU set GLOO_SOCKET_IFNAME=lo for loopback. docs/SCALING.md has multi-node commands.)

TEACHER is a canonical safetensors file (`hd-convert` output: `hd.config`, `hd.vocab` embedded); the corpus
is a token file from `hd-distill TEACHER --tokenize-only --corpus TEXT… -o corpus.tokens`. The output is a
`student.ckpt` that `hd-export --shrink`, `hd-infer` and `hd-distill --resume` take, and `--resume` takes
one written by `hd-distill`. Flags, defaults and meanings are `hd-distill`'s, except that `--batch` is the
global batch of one micro-batch, split evenly over the ranks (a 2-process run with --batch 16 computes what
`hd-distill --batch 16` computes).

Same seed, same run: data order, masking (tools/torch/hd_rng.py) and every formula follow the Swift
trainer, so in fp32 the two log the same losses step by step (up to float summation order). Every rank draws
the whole global batch from the shared generators and keeps its slice; each rank's loss terms are its sums
over the *global* counts, so the gradient all-reduced by summation (torch.distributed, gloo or nccl) is the
gradient of the global batch, and importance, masks and the optimiser — computed from it — are identical on
every rank (the masks are compared across ranks after every mask update; --check-ranks compares every
weight, mask and importance value after every step).

Devices: --device cpu (gloo; the reference, checked against hd-distill by tools/torch/test_cross_checks.py)
or --device cuda (one GPU per rank by LOCAL_RANK, nccl; --bf16 autocasts the forward passes, losses stay
fp32). The CUDA path is the same code on another device but has not been run here (no GPU on the
machine it was written on).

What runs: an MLM teacher (KL on the masked positions + MLM + hidden/attention/embedding terms with their
projections); a headless teacher such as a sentence-transformers encoder (plain, unmasked text; the layer
terms + --alpha-pooled·(1 − cos) of the pooled embeddings, --pooling mean|cls; no MLM, no KL);
--keep-layers I,J,… (layer dropping: student layer j distilled from teacher layer I_j, hd.teacher_layers);
--recipe self-distilled (cross-correlation of the final hidden states, magnitude pruning; with several
ranks the hidden states are all-gathered for it); --no-distill-layers, --mlm-only, pruning
(--target/--hidden/--ffn/--head-size; cubic or one-shot; platon, sensitivity or magnitude), AdamW with
warm-up and linear decay, clipping, accumulation, evaluation, --resume. Refused (exit 64, naming the flag):
classifier teachers, --task, --init random, --hf-compatible, a student.ckpt as TEACHER.

Exit status: 0 ok, 64 usage, 65 bad input data (a bad file, a non-finite loss), 1 other.
"""
import argparse
import contextlib
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hd_files import FileError, TokenFile, read_safetensors, sha256, write_safetensors  # noqa: E402
from hd_rng import DataOrder, Masking, Xoshiro256, swift_round  # noqa: E402

F32 = np.float32
EXIT_USAGE, EXIT_DATA = 64, 65


class UsageError(Exception):
    pass


# ---------------------------------------------------------------------------------------------- flags

class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 64 like the hd-* tools (argparse's own is 2)."""

    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    p = Parser(prog="hd_distill.py", description=__doc__.split("\n\n")[0])
    p.add_argument("teacher")
    p.add_argument("--corpus", nargs="+", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--resume")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=8, help="Sequences per micro-batch, over all ranks.")
    p.add_argument("--accumulate", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip-norm", type=float, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha-mlm", type=float)
    p.add_argument("--alpha-kl", type=float)
    p.add_argument("--alpha-pooled", type=float)
    p.add_argument("--alpha-hidden", type=float, default=1)
    p.add_argument("--alpha-attention", type=float, default=1)
    p.add_argument("--alpha-embedding", type=float, default=1)
    p.add_argument("--no-distill-layers", action="store_true")
    p.add_argument("--temperature", type=float, default=1)
    p.add_argument("--mlm-only", action="store_true")
    p.add_argument("--held-out-every", type=int)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-sequences", type=int, default=64)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--log")
    p.add_argument("--threads", type=int, default=1, help="Torch threads per process.")
    p.add_argument("--target")
    p.add_argument("--hidden", type=int)
    p.add_argument("--ffn", type=int)
    p.add_argument("--head-size", type=int)
    p.add_argument("--width-multiple", type=int, default=8)
    p.add_argument("--schedule", choices=["cubic", "one-shot"], default="cubic")
    p.add_argument("--prune-start", type=int)
    p.add_argument("--prune-end", type=int)
    p.add_argument("--prune-every", type=int, default=10)
    p.add_argument("--importance", choices=["platon", "sensitivity", "magnitude"])
    p.add_argument("--stop-after", type=int, help="Stop after this step, writing the checkpoint (a run to resume elsewhere).")
    p.add_argument("--check-ranks", action="store_true", help="All-reduce a digest of masks and weights after every step and stop if ranks differ.")
    p.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per rank: LOCAL_RANK).")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA (fp32 is the reference).")
    p.add_argument("--pooling", choices=["mean", "cls"], default="mean",
                   help="Pooling of the sentence-embedding term: mean (over real tokens) or cls.")
    p.add_argument("--keep-layers", help="Layer dropping: the student is TEACHER with only these encoder layers "
                   "(0-based, strictly increasing, e.g. 1,3,5); student layer j is distilled from teacher layer I_j.")
    p.add_argument("--recipe", choices=["homodistil", "self-distilled"], default="homodistil")
    p.add_argument("--alpha-cc", type=float, default=1)
    p.add_argument("--cc-lambda", type=float, default=5e-3)
    # Flags of hd-distill this trainer does not run (yet): refused by name rather than ignored.
    for flag in ["--task", "--task-dev", "--init", "--text-column",
                 "--pair-column", "--label-column", "--dev-fraction", "--split-seed"]:
        p.add_argument(flag, dest="unsupported_" + flag[2:].replace("-", "_"))
    p.add_argument("--hf-compatible", action="store_true")
    a = p.parse_args(argv)
    for k, v in vars(a).items():
        if k.startswith("unsupported_") and v is not None and not (k == "unsupported_init" and v == "copy"):
            raise UsageError(f"--{k[12:].replace('_', '-')}: not implemented in the torch trainer; use hd-distill")
    if a.hf_compatible:
        raise UsageError("--hf-compatible: not implemented in the torch trainer; round the target yourself")
    for name in ["steps", "batch", "accumulate", "seq_len", "eval_sequences"]:
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be ≥ 1, found {getattr(a, name)}")
    if not (0 <= a.warmup < a.steps):
        raise UsageError(f"--warmup must be in 0..<--steps ({a.steps}), found {a.warmup}")
    if not (a.lr > 0 and math.isfinite(a.lr)) or not (a.temperature > 0):
        raise UsageError("--lr and --temperature must be finite numbers > 0")
    if a.width_multiple < 1 or a.prune_every < 1:
        raise UsageError("--width-multiple and --prune-every must be ≥ 1")
    a.prunes = any(x is not None for x in (a.target, a.hidden, a.ffn, a.head_size))
    if a.target and any(x is not None for x in (a.hidden, a.ffn, a.head_size)):
        raise UsageError("--target replaces --hidden/--ffn/--head-size; give one or the other")
    if a.mlm_only and a.prunes:
        raise UsageError("pruning needs TEACHER as a teacher; it cannot go with --mlm-only")
    if not a.prunes and (a.prune_start is not None or a.prune_end is not None or a.importance is not None):
        raise UsageError("--prune-start/--prune-end/--importance need a target (--target or --hidden/--ffn/--head-size)")
    if a.prune_end is not None and a.prune_end > a.steps and a.schedule == "cubic":
        raise UsageError(f"--prune-end must be ≤ --steps ({a.steps}) so the target is reached, found {a.prune_end}")
    for name in ["alpha_mlm", "alpha_kl", "alpha_pooled", "alpha_hidden", "alpha_attention", "alpha_embedding", "alpha_cc", "cc_lambda"]:
        value = getattr(a, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number ≥ 0, found {value}")
    if a.recipe == "self-distilled" and not a.prunes:
        raise UsageError("--recipe self-distilled prunes: give --target or --hidden/--ffn/--head-size")
    if a.recipe == "self-distilled" and a.importance not in (None, "magnitude"):
        raise UsageError(f"--recipe self-distilled prunes by magnitude; --importance {a.importance} does not apply")
    a.teacher_layers = None
    if a.keep_layers is not None:
        if a.mlm_only:
            raise UsageError("--keep-layers maps student layers onto TEACHER's; it cannot go with --mlm-only")
        items = a.keep_layers.split(",")
        if not all(i and all("0" <= c <= "9" for c in i) for i in items):
            raise UsageError(f"--keep-layers {a.keep_layers}: expected 0-based teacher layer indices separated by commas, "
                             "such as 1,3,5 (no spaces)")
        a.teacher_layers = [int(i) for i in items]
        problem = layer_map_problem(a.teacher_layers, None)
        if problem:
            raise UsageError(f"--keep-layers {a.keep_layers}: {problem}")
    if len(a.corpus) != 1:
        raise UsageError("--corpus: the torch trainer reads one token file (hd-distill TEACHER --tokenize-only --corpus TEXT… -o corpus.tokens)")
    return a


def layer_map_problem(layers, depth):
    """Why `layers` cannot map a student onto a teacher of `depth` layers, or None (`LayerDropping.problem`)."""
    allowed = "0-based teacher layer indices" + (f" in 0…{depth - 1} (the teacher has {depth} layers)" if depth else " ≥ 0") \
        + ", strictly increasing, at least one"
    if not layers:
        return f"expected {allowed}, found none"
    bad = [i for i in layers if i < 0 or (depth is not None and i >= depth)]
    if bad:
        return f"expected {allowed}, found {bad[0]}"
    for x, y in zip(layers, layers[1:]):
        if y <= x:
            return f"expected {allowed}, found {y} after {x}"
    return None


def swift_float(x):
    """A Float as Swift's description prints it ("0.0005", "1e-05", "1.0"): the recipe strings must match."""
    digits = np.format_float_scientific(F32(x), unique=True, trim="-")
    mantissa, exp = digits.split("e")
    exp = int(exp)
    if -4 <= exp < 16:
        text = np.format_float_positional(F32(x), unique=True, trim="-")
        return text if "." in text else text + ".0"
    m = mantissa.rstrip(".")
    return f"{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


# --------------------------------------------------------------------------------------------- model

class Config:
    def __init__(self, text, source):
        c = json.loads(text)
        if c.get("hd_layers") is not None:
            raise FileError(f"{source}: hd.config: per-layer widths (hd_layers) are not run by the torch trainer")
        self.raw = text
        self.d = c["hidden_size"]
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.head_size = c.get("hd_attention_head_size") or self.d // self.heads
        self.ffn = c["intermediate_size"]
        self.vocab = c["vocab_size"]
        self.positions = c["max_position_embeddings"]
        self.types = c["type_vocab_size"]
        self.eps = float(F32(c.get("layer_norm_eps", 1e-12)))
        self.act = c.get("hidden_act", "gelu")
        if self.act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
            raise FileError(f"{source}: hd.config: hidden_act {self.act!r} is not run by the torch trainer")
        scale = c.get("hd_attention_scale")
        self.scale = float(F32(scale)) if scale is not None else float(F32(1) / np.sqrt(F32(self.head_size)))
        if c.get("position_embedding_type", "absolute") != "absolute":
            raise FileError(f"{source}: hd.config: only absolute position embeddings")


def layer_names(l):
    p = f"bert.encoder.layer.{l}."
    return dict(q=p + "attention.self.query", k=p + "attention.self.key", v=p + "attention.self.value",
                o=p + "attention.output.dense", ln1=p + "attention.output.LayerNorm", i=p + "intermediate.dense",
                out=p + "output.dense", ln2=p + "output.LayerNorm")


def layout(cfg, weights):
    """Trainable tensors in `BertParameterLayout` order: embeddings, layers, the MLM head when the model has
    one (a headless sentence encoder has none; the pooler is frozen)."""
    names = ["bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
             "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"]
    for l in range(cfg.layers):
        n = layer_names(l)
        for key in ["q", "k", "v", "o", "ln1", "i", "out", "ln2"]:
            names += [n[key] + ".weight", n[key] + ".bias"]
    if "cls.predictions.bias" not in weights:
        return names
    names += ["cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
              "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"]
    if "cls.predictions.decoder.weight" in weights:
        names.append("cls.predictions.decoder.weight")
    names.append("cls.predictions.bias")
    return names


def drop_layers(weights, layers, depth):
    """`LayerDropping.student`: the teacher's embeddings, its layers `layers` renumbered 0…k−1, the rest as it is."""
    inside = lambda name, i: name.startswith(f"bert.encoder.layer.{i}.")  # noqa: E731
    out = {k: v for k, v in weights.items() if not any(inside(k, i) for i in range(depth))}
    for j, i in enumerate(layers):
        prefix = f"bert.encoder.layer.{i}."
        for k, v in weights.items():
            if k.startswith(prefix):
                out[f"bert.encoder.layer.{j}." + k[len(prefix):]] = v
    return out


def config_with_layers(raw, count, source):
    """The teacher's hd.config text with num_hidden_layers set to `count` (the layer-dropped student's config)."""
    new, n = re.subn(r'"num_hidden_layers"\s*:\s*\d+', f'"num_hidden_layers":{count}', raw)
    if n != 1:
        raise FileError(f"{source}: hd.config: expected one num_hidden_layers field, found {n}")
    return new


def couplings(cfg, names):
    """(tensor, row group, column group) of `PruneMasks.couplings`: which mask indexes which axis."""
    table = {"bert.embeddings.word_embeddings.weight": (None, "hidden"), "bert.embeddings.position_embeddings.weight": (None, "hidden"),
             "bert.embeddings.token_type_embeddings.weight": (None, "hidden"),
             "bert.embeddings.LayerNorm.weight": ("hidden", None), "bert.embeddings.LayerNorm.bias": ("hidden", None),
             "cls.predictions.transform.dense.weight": ("hidden", "hidden"), "cls.predictions.transform.dense.bias": ("hidden", None),
             "cls.predictions.transform.LayerNorm.weight": ("hidden", None), "cls.predictions.transform.LayerNorm.bias": ("hidden", None),
             "cls.predictions.decoder.weight": (None, "hidden"), "cls.predictions.bias": (None, None)}
    for l in range(cfg.layers):
        n, qk, v, f = layer_names(l), f"layer.{l}.query_key", f"layer.{l}.value", f"layer.{l}.ffn"
        table.update({n["q"] + ".weight": (qk, "hidden"), n["q"] + ".bias": (qk, None),
                      n["k"] + ".weight": (qk, "hidden"), n["k"] + ".bias": (qk, None),
                      n["v"] + ".weight": (v, "hidden"), n["v"] + ".bias": (v, None),
                      n["o"] + ".weight": ("hidden", v), n["o"] + ".bias": ("hidden", None),
                      n["ln1"] + ".weight": ("hidden", None), n["ln1"] + ".bias": ("hidden", None),
                      n["i"] + ".weight": (f, "hidden"), n["i"] + ".bias": (f, None),
                      n["out"] + ".weight": ("hidden", f), n["out"] + ".bias": ("hidden", None),
                      n["ln2"] + ".weight": ("hidden", None), n["ln2"] + ".bias": ("hidden", None)})
    return [(name,) + table[name] for name in names if table[name] != (None, None)]


def layer_norm(x, w, b, eps, keep):
    """LayerNorm over the kept hidden dimensions only (`Kernels.layerNorm(keep:)`); dropped ones are 0."""
    if keep is None:
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)
    n = keep.sum()
    mean = (x * keep).sum(-1, keepdim=True) / n
    d = (x - mean) * keep
    var = (d * d).sum(-1, keepdim=True) / n
    return ((x - mean) * torch.rsqrt(var + eps) * w + b) * keep


def act(x, kind):
    return F.gelu(x) if kind == "gelu" else F.gelu(x, approximate="tanh")


def forward(cfg, P, ids, keep):
    """Hidden states (embeddings' output, then each layer's) and attention probabilities of a packed batch
    (every token real, token type 0)."""
    B, L = ids.shape
    x = P["bert.embeddings.word_embeddings.weight"][ids] + P["bert.embeddings.position_embeddings.weight"][:L] \
        + P["bert.embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, P["bert.embeddings.LayerNorm.weight"], P["bert.embeddings.LayerNorm.bias"], cfg.eps, keep)
    hidden, probs = [x], []
    H, hs = cfg.heads, cfg.head_size
    for l in range(cfg.layers):
        n = layer_names(l)
        lin = lambda t, key: F.linear(t, P[n[key] + ".weight"], P[n[key] + ".bias"])  # noqa: E731
        q = lin(x, "q").view(B, L, H, hs).transpose(1, 2)
        k = lin(x, "k").view(B, L, H, hs).transpose(1, 2)
        v = lin(x, "v").view(B, L, H, hs).transpose(1, 2)
        p = torch.softmax(q @ k.transpose(-1, -2) * cfg.scale, dim=-1)
        probs.append(p)
        ctx = (p @ v).transpose(1, 2).reshape(B, L, H * hs)
        x = layer_norm(lin(ctx, "o") + x, P[n["ln1"] + ".weight"], P[n["ln1"] + ".bias"], cfg.eps, keep)
        h = act(lin(x, "i"), cfg.act)
        x = layer_norm(lin(h, "out") + x, P[n["ln2"] + ".weight"], P[n["ln2"] + ".bias"], cfg.eps, keep)
        hidden.append(x)
    return hidden, probs


def mlm_logits(cfg, P, last, rows, keep):
    """The MLM head at flat positions `rows` of the last hidden states."""
    h = last.reshape(-1, cfg.d)[rows]
    h = act(F.linear(h, P["cls.predictions.transform.dense.weight"], P["cls.predictions.transform.dense.bias"]), cfg.act)
    h = layer_norm(h, P["cls.predictions.transform.LayerNorm.weight"], P["cls.predictions.transform.LayerNorm.bias"], cfg.eps, keep)
    decoder = P.get("cls.predictions.decoder.weight", P["bert.embeddings.word_embeddings.weight"])
    return F.linear(h, decoder, P["cls.predictions.bias"])


def pooled_cosine(student, teacher, pooling, keep):
    """`PooledCosineLoss`'s cosine of each sequence's pooled student and teacher embeddings [B] (float64):
    the mean over the sequence's tokens (every token of a packed sequence is real) or its [CLS] row,
    compared over the kept hidden dimensions only; norms floored at 1e-12."""
    if pooling == "mean":
        s, t = student.mean(1), teacher.mean(1)
    else:
        s, t = student[:, 0], teacher[:, 0]
    s, t = s.double(), t.double()
    if keep is not None:
        s, t = s * keep.double(), t * keep.double()
    ns = torch.sqrt((s * s).sum(-1)).clamp_min(1e-12)
    nt = torch.sqrt((t * t).sum(-1)).clamp_min(1e-12)
    return (s * t).sum(-1) / (ns * nt)


CC_EPSILON = float(F32(1e-5))


def cross_correlation_loss(zs, zt, keep, lam):
    """`CrossCorrelationLoss`: Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², C = Ẑ_sᵀ Ẑ_t / N over the N rows of the
    kept columns, each column standardised with its mean and biased variance (in float64, ε = 1e-5 inside
    the root). The teacher side carries no gradient."""
    if keep is not None:
        cols = torch.nonzero(keep).squeeze(1)
        zs, zt = zs[:, cols], zt[:, cols]
    n, k = zs.shape
    if n == 0 or k == 0:
        return torch.zeros((), device=zs.device)

    def standardise(z):
        mean = z.double().mean(0)
        var = ((z.double() - mean) ** 2).mean(0)
        return (z - mean.float()) * (1 / torch.sqrt(var + CC_EPSILON)).float()

    a, b = standardise(zs), standardise(zt)
    c = (a.T @ b) * float(F32(1) / F32(n))
    off = ~torch.eye(k, dtype=torch.bool, device=zs.device)
    diag = torch.diagonal(c)
    return ((1 - diag) * (1 - diag)).double().sum() + ((lam * c) * c)[off].double().sum()


# -------------------------------------------------------------------------------------------- pruning

PRESETS = {"homobert-base": (576, 2304, 48), "homobert-small": (256, 1024, 21),
           "homobert-xsmall": (240, 960, 20), "homobert-tiny": (224, 896, 19)}


def prune_options(a, cfg):
    if not a.prunes:
        return None
    if a.target:
        if a.target not in PRESETS:
            raise UsageError(f"--target: expected one of {', '.join(sorted(PRESETS))}, found {a.target}")
        h, f, s = PRESETS[a.target]
        scaled = lambda v, ref, act_: max(1, swift_round(v * act_ / ref))  # noqa: E731
        target = (scaled(h, 768, cfg.d), scaled(f, 3072, cfg.ffn), scaled(s, 64, cfg.head_size))
    else:
        target = (a.hidden or cfg.d, a.ffn or cfg.ffn, a.head_size or cfg.head_size)
    m = a.width_multiple
    up = lambda v: (v + m - 1) // m * m  # noqa: E731
    target = (up(target[0]), up(target[1]), target[2])
    for flag, value, limit in [("--hidden", target[0], cfg.d), ("--ffn", target[1], cfg.ffn), ("--head-size", target[2], cfg.head_size)]:
        if not 1 <= value <= limit:
            raise UsageError(f"{flag}: expected 1…{limit} (the teacher's width) after rounding to a multiple of {m}, found {value}")
    start = a.prune_start if a.prune_start is not None else a.steps // 10
    end = a.prune_end if a.prune_end is not None else max(start + 1, a.steps * 7 // 10)
    if a.schedule == "cubic" and not (0 <= start < end):
        raise UsageError(f"pruning schedule: expected 0 ≤ --prune-start < --prune-end, found {start} and {end}")
    return dict(target=target, schedule=a.schedule, start=start, end=end, every=a.prune_every,
                importance=a.importance or "platon", multiple=m)


class Pruner:
    """`Pruner`: importance after the backward, top-k per block on the schedule, pruned entries zeroed."""

    def __init__(self, opts, cfg, names, params):
        self.o, self.cfg, self.names = opts, cfg, names
        self.device = params[names[0]].device
        self.couplings = couplings(cfg, names)
        self.groups = ["hidden"] + [f"layer.{l}.{g}" for l in range(cfg.layers) for g in ("query_key", "value", "ffn")]
        self.masks = {g: torch.ones(self.size(g), device=self.device) for g in self.groups}
        kind = opts["importance"]
        self.mean = {n: torch.zeros_like(params[n]) for n in names} if kind != "magnitude" else {}
        self.unc = {n: torch.zeros_like(params[n]) for n in names} if kind == "platon" else {}
        self.b1, self.b2 = float(F32(0.85)), float(F32(0.95))
        self.c1, self.c2 = float(F32(1) - F32(0.85)), float(F32(1) - F32(0.95))

    def size(self, g):
        return self.cfg.d if g == "hidden" else self.cfg.ffn if g.endswith("ffn") else self.cfg.heads * self.cfg.head_size

    def blocks(self, g):
        return self.cfg.heads if g.endswith(("query_key", "value")) else 1

    def units(self, g):
        t = self.o["target"]
        return t[0] if g == "hidden" else t[1] if g.endswith("ffn") else t[2]

    def updates(self, t):
        o = self.o
        if o["schedule"] == "one-shot":
            return t == 1
        return o["start"] < t <= o["end"] and ((t - o["start"]) % o["every"] == 0 or t == o["end"])

    def needs_importance(self, t):
        return t == 1 if self.o["schedule"] == "one-shot" else t <= self.o["end"]

    def kept_at(self, g, t):
        per = self.size(g) // self.blocks(g)
        target = min(self.units(g), per)
        multiple = self.o["multiple"] if g == "hidden" or g.endswith("ffn") else 1
        o = self.o
        if o["schedule"] == "one-shot":
            return target if t >= 1 else per
        if t <= o["start"]:
            return per
        if t >= o["end"]:
            return target
        remaining = 1 - (t - o["start"]) / (o["end"] - o["start"])
        exact = target + (per - target) * remaining ** 3
        return min(per, max(target, math.ceil(exact / multiple) * multiple))

    def factor(self, name, rows, cols, shape):
        """The 0/1 keep pattern of a tensor from its row and column masks."""
        r = self.masks[rows] if rows else None
        c = self.masks[cols] if cols else None
        if len(shape) == 1:
            return r
        f = torch.ones(shape, device=self.device)
        if r is not None:
            f = f * r[:, None]
        if c is not None:
            f = f * c[None, :]
        return f

    def zero(self, tensors):
        with torch.no_grad():
            for name, rows, cols in self.couplings:
                if name in tensors:
                    tensors[name].mul_(self.factor(name, rows, cols, tensors[name].shape))

    def scores(self, params):
        """Each unit's score: the sum over its rows and columns of the per-weight score (in float64)."""
        kind = self.o["importance"]
        out = {g: torch.zeros(self.size(g), dtype=torch.float64, device=self.device) for g in self.groups}
        for name, rows, cols in self.couplings:
            s = params[name].detach().abs() if kind == "magnitude" else self.mean[name] if kind == "sensitivity" else self.mean[name] * self.unc[name]
            s = s.double().reshape(s.shape[0], -1)
            if rows:
                out[rows] += s.sum(1)
            if cols:
                out[cols] += s.sum(0)
        return out

    def after_backward(self, t, params, grads, moments):
        """Step t's pruning between backward and optimiser; returns whether masks changed."""
        kind = self.o["importance"]
        if self.needs_importance(t) and kind != "magnitude":
            with torch.no_grad():
                for n in self.names:
                    cur = (params[n] * grads[n]).abs()
                    if kind == "sensitivity":
                        self.mean[n] = cur
                    else:
                        avg = self.b1 * self.mean[n] + self.c1 * cur
                        self.mean[n] = avg
                        self.unc[n] = self.b2 * self.unc[n] + self.c2 * (cur - avg).abs()
        changed = False
        if self.updates(t):
            scores = {g: v.cpu().numpy() for g, v in self.scores(params).items()}
            for g in self.groups:
                # On the host: a few thousand units, ranked only at mask updates.
                k, flags, per = self.kept_at(g, t), self.masks[g].cpu().numpy().copy(), self.size(g) // self.blocks(g)
                for b in range(self.blocks(g)):
                    kept = [i for i in range(b * per, (b + 1) * per) if flags[i] != 0]
                    if len(kept) <= k:
                        continue
                    ranked = sorted(kept, key=lambda i: (-scores[g][i], i))
                    flags[ranked[k:]] = 0
                    changed = True
                self.masks[g] = torch.from_numpy(flags).to(self.device)
            if changed:
                for buf in [params] + moments:
                    self.zero(buf)
                self.zero(self.mean)
                self.zero(self.unc)
        if any(self.masks[g].sum() < self.size(g) for g in self.groups):
            self.zero(grads)
        return changed

    @property
    def hidden_keep(self):
        m = self.masks["hidden"]
        return None if m.sum() == m.numel() else m

    def widths(self):
        cfg = self.cfg
        ffn = [int(self.masks[f"layer.{l}.ffn"].sum()) for l in range(cfg.layers)]
        qk = [int(self.masks[f"layer.{l}.query_key"].sum()) // cfg.heads for l in range(cfg.layers)]
        return int(self.masks["hidden"].sum()), ffn, qk


def model_size(cfg, hidden, ffns, head_sizes, pooler, head):
    """`ModelSize`: parameters of the dense model and FLOPs of one 128-token sequence (`FlopReport`)."""
    d, n = hidden, 128
    params = (cfg.vocab + cfg.positions + cfg.types) * d + 2 * d
    flops = n * d * (2 + 8)
    for f, hs in zip(ffns, head_sizes):
        a = cfg.heads * hs
        params += 3 * (a * d + a) + (d * a + d) + 2 * d + (f * d + f) + (d * f + d) + 2 * d
        flops += 2 * n * d * 3 * a + 2 * n * a * d + 4 * n * d * f + 4 * n * n * a
        flops += n * (3 * a + d + f + d) + 2 * n * d * 9 + n * f * 8 + n * n * cfg.heads * 5
    if pooler:
        params += d * d + d
    if head != "none":
        params += d * d + d + 2 * d + cfg.vocab + (cfg.vocab * d if head == "untied" else 0)
    return params, flops


# ------------------------------------------------------------------------------------------ optimiser

def lr_at(peak, warmup, total, s):
    """`LRSchedule.rate(atUpdate:)` in Float arithmetic."""
    peak = F32(peak)
    if s < warmup:
        return F32(peak * F32(s + 1)) / F32(warmup)
    return F32(peak * F32(max(0, total - s))) / F32(total - warmup)


def adamw(p, g, m, v, step, lr, decay, wd):
    """`AdamW.update`: torch.optim.AdamW's single-tensor arithmetic with scalars formed in double."""
    t, lr = float(step), float(lr)
    # Python floats holding float32 values: torch rounds a Python scalar to the tensor's float32 anyway.
    step_size = float(F32(lr / (1 - 0.9 ** t)))
    c2root = float(F32(math.sqrt(1 - 0.999 ** t)))
    shrink = float(F32(1 - lr * wd)) if decay else 1.0
    c1, b2, c2, eps = (float(F32(x)) for x in (1 - 0.9, 0.999, 1 - 0.999, 1e-6))
    with torch.no_grad():
        m.add_(c1 * (g - m))
        v.mul_(b2).add_(c2 * g * g)
        p.mul_(shrink).sub_(step_size * (m / (v.sqrt() / c2root + eps)))


# ------------------------------------------------------------------------------------------- trainer

class Trainer:
    def __init__(self, a, rank, world):
        self.a, self.rank, self.world = a, rank, world
        self.device = dev = torch.device(a.device if a.device == "cpu" else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        if a.bf16 and a.device == "cpu":
            raise UsageError("--bf16 is autocast on CUDA; fp32 on CPU is the reference")
        tensors, meta = read_safetensors(a.teacher)
        if meta.get("hd.kind") == "student":
            raise UsageError(f"{a.teacher}: a student.ckpt as TEACHER is not run by the torch trainer; export it (hd-export --shrink) first")
        if "hd.config" not in meta or "hd.vocab" not in meta:
            raise FileError(f"{a.teacher}: expected a canonical checkpoint with hd.config and hd.vocab (convert it with hd-convert)")
        self.tcfg = tcfg = Config(meta["hd.config"], a.teacher)
        self.vocab = meta["hd.vocab"].split("\n")
        self.lowercase = meta.get("hd.do_lower_case", "true") == "true"
        if "classifier.weight" in tensors:
            raise UsageError(f"{a.teacher} is a classifier: task-specific distillation is not run by the torch trainer")
        # `TeacherHead`: an MLM head (masked batches, MLM + KL) or none (a sentence encoder: plain text,
        # layer terms + pooled cosine).
        self.head = "mlm" if "cls.predictions.bias" in tensors else "none"
        if self.head == "none" and a.mlm_only:
            raise UsageError(f"{a.teacher} has no MLM head: --mlm-only trains one, so it needs a model with cls.predictions.*")
        teacher_weights = {k: torch.from_numpy(np.array(v, dtype=np.float32)).to(dev) for k, v in tensors.items() if v.dtype == np.float32}
        if a.teacher_layers is not None:
            problem = layer_map_problem(a.teacher_layers, tcfg.layers)
            if problem:
                raise UsageError(f"--keep-layers {a.keep_layers}: {problem}")
            self.cfg = cfg = Config(config_with_layers(tcfg.raw, len(a.teacher_layers), a.teacher), a.teacher)
            student_weights = drop_layers(teacher_weights, a.teacher_layers, tcfg.layers)
        else:
            self.cfg = cfg = tcfg
            student_weights = teacher_weights
        # m(k): the teacher layer each student layer is distilled from.
        self.layer_map = a.teacher_layers or list(range(cfg.layers))
        self.names = layout(cfg, student_weights)
        self.frozen = {k: v for k, v in student_weights.items() if k not in self.names}
        self.P = {n: student_weights[n].clone().requires_grad_(True) for n in self.names}
        self.T = None if a.mlm_only else teacher_weights
        self.teacher_sha = None if a.mlm_only else sha256(a.teacher)

        # Loss weights are Floats in hd-distill: the same values here (0.1 is 0.10000000149…), with the
        # defaults `resolveAlphas` gives for the teacher's head.
        f32 = lambda x: float(F32(x))  # noqa: E731
        if self.head == "none":
            for flag, value in [("--alpha-mlm", a.alpha_mlm), ("--alpha-kl", a.alpha_kl)]:
                if (value or 0) > 0:
                    raise UsageError(f"{flag} {value}: {a.teacher} has no MLM head, so there is no "
                                     f"{'masked-LM' if flag == '--alpha-mlm' else 'logit'} term; use --alpha-pooled and the layer terms")
            self.alpha_mlm, self.alpha_kl = 0.0, 0.0
            self.alpha_pooled = f32(a.alpha_pooled if a.alpha_pooled is not None else 1.0)
        else:
            self.alpha_mlm = f32(a.alpha_mlm if a.alpha_mlm is not None else 1.0)
            self.alpha_kl = 0.0 if a.mlm_only else f32(a.alpha_kl if a.alpha_kl is not None else 1.0)
            self.alpha_pooled = 0.0 if a.mlm_only else f32(a.alpha_pooled or 0.0)
        layers = 0.0 if a.mlm_only or a.no_distill_layers else 1.0
        self.alpha_h, self.alpha_a, self.alpha_e = (f32(layers * x) for x in (a.alpha_hidden, a.alpha_attention, a.alpha_embedding))
        # `useSelfDistilledRecipe`: the cross-correlation alone besides MLM (and the pooled cosine).
        self.alpha_cc, self.cc_lambda = 0.0, f32(5e-3)
        if a.recipe == "self-distilled":
            self.alpha_kl = self.alpha_h = self.alpha_a = self.alpha_e = 0.0
            self.alpha_cc, self.cc_lambda = f32(a.alpha_cc), f32(a.cc_lambda)
        self.tau = f32(a.temperature)

        self.data = TokenFile(a.corpus[0], self.vocab, self.lowercase, a.seq_len)
        if a.held_out_every is not None and a.held_out_every != self.data.held_out_every:
            raise UsageError(f"--held-out-every {a.held_out_every}: {a.corpus[0]} was split with --held-out-every "
                             f"{self.data.held_out_every} when it was tokenised; drop the flag or tokenise again")
        if a.seq_len > cfg.positions:
            raise UsageError(f"sequence length {a.seq_len} is over the model's {cfg.positions} positions")
        if a.batch % world:
            raise UsageError(f"--batch {a.batch}: the global batch must split evenly over {world} processes")
        self.masking = Masking(self.data.special, cfg.vocab)

        self.proj_names = []
        if not a.mlm_only and (self.alpha_h > 0 or self.alpha_a > 0 or self.alpha_e > 0):
            if self.alpha_e > 0:
                self.proj_names.append("embeddings")
            if self.alpha_h > 0:
                self.proj_names += [f"hidden.{l}" for l in range(cfg.layers)]
        self.W = {n: torch.eye(cfg.d, device=dev).requires_grad_(True) for n in self.proj_names}
        self.m = {n: torch.zeros_like(t) for n, t in list(self.P.items()) + [("hd.proj." + k, w) for k, w in self.W.items()]}
        self.v = {n: torch.zeros_like(t) for n, t in self.m.items()}
        self.popts = prune_options(a, cfg)
        if self.popts and a.recipe == "self-distilled":
            self.popts["importance"] = "magnitude"
        self.pruner = Pruner(self.popts, cfg, self.names, self.P) if self.popts else None
        self.step = 0
        self.rng = Xoshiro256(seed=a.seed)
        self.order = DataOrder(a.seed, self.data.count("train"))

    # The recipe as `TrainerOptions.recipe` writes it, so either trainer resumes the other's checkpoint.
    def recipe(self):
        a, f = self.a, swift_float
        r = {"steps": str(a.steps), "batch": str(a.batch), "accumulate": str(a.accumulate), "lr": f(a.lr),
             "warmup": str(a.warmup), "weight_decay": f(a.weight_decay), "clip_norm": f(a.clip_norm), "seed": str(a.seed),
             "alpha_mlm": f(self.alpha_mlm), "alpha_kl": f(self.alpha_kl), "alpha_hidden": f(self.alpha_h),
             "alpha_attention": f(self.alpha_a), "alpha_embedding": f(self.alpha_e), "temperature": f(a.temperature),
             "init": "copy", "alpha_cc": f(self.alpha_cc), "cc_lambda": f(self.cc_lambda)}
        if self.alpha_pooled > 0:
            r.update({"alpha_pooled": f(self.alpha_pooled), "pooling": a.pooling})
        if self.popts:
            o = self.popts
            r.update({"prune.target": "%d/%d/%d" % o["target"], "prune.schedule": o["schedule"], "prune.start": str(o["start"]),
                      "prune.end": str(o["end"]), "prune.every": str(o["every"]), "prune.importance": o["importance"],
                      "prune.width_multiple": str(o["multiple"])})
        return r

    # -------------------------------------------------------------------------------- one step

    def global_batch(self, order, rng, split="train", indices=None):
        """The whole micro-batch as every rank draws it, so the generators stay in step (`local` takes the slice):
        ids [B, L] after masking, flat masked positions (ascending) and their labels."""
        if indices is None:
            indices = [order.next() for _ in range(self.a.batch)]
        ids = self.data.sequences(split, indices)
        if self.head != "mlm":
            # A teacher without an MLM head sees, like its student, the text as it is (no draw from `rng`).
            return ids, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        positions, labels = self.masking.mask(ids, rng)
        return ids, positions, labels

    def local(self, ids, positions, labels):
        """This rank's rows of a global batch, positions re-based to its slice."""
        B, L = ids.shape
        per = B // self.world
        lo, hi = self.rank * per * L, (self.rank + 1) * per * L
        keep = (positions >= lo) & (positions < hi)
        return (self.tensor(ids[self.rank * per:(self.rank + 1) * per]), self.tensor(positions[keep] - lo), self.tensor(labels[keep]))

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.a.bf16 else contextlib.nullcontext()

    def tensor(self, array):
        return torch.from_numpy(array).to(self.device)

    def terms(self, ids, positions, labels, n_labels, n_sequences, grad):
        """This rank's share of each term: its sums over the global counts (rows, tokens, elements, sequences).
        Besides the terms: "correct" (top-1 hits, MLM head) and, without grad, "cosine" (Σ of the pooled
        cosines, a headless teacher), which evaluation sums."""
        cfg, tcfg, L = self.cfg, self.tcfg, ids.shape[1]
        keep = self.pruner.hidden_keep if self.pruner else None
        ctx = torch.enable_grad() if grad else torch.no_grad()
        out = {}
        with ctx:
            with self.autocast():
                hs, probs = forward(cfg, self.P, ids, keep)
                logits = mlm_logits(cfg, self.P, hs[-1], positions, keep) if self.head == "mlm" else None
            # The losses in fp32 whatever the forward ran in (--bf16).
            hs, probs = [h.float() for h in hs], [p.float() for p in probs]
            if logits is not None:
                logits = logits.float()
                out["mlm"] = F.cross_entropy(logits, labels, reduction="sum") / n_labels
                out["correct"] = (logits.argmax(-1) == labels).sum().detach()
            if self.T is None:
                return out
            with torch.no_grad(), self.autocast():
                ths, tprobs = forward(tcfg, self.T, ids, None)
                tlogits = mlm_logits(tcfg, self.T, ths[-1], positions, None) if logits is not None else None
            ths, tprobs = [h.float() for h in ths], [p.float() for p in tprobs]
            if logits is not None:
                tlogits, tau = tlogits.float(), self.tau
                # Computed and logged whatever --alpha-kl is, as hd-distill does (the gap to the teacher).
                pt = F.log_softmax(tlogits / tau, -1)
                ps = F.log_softmax(logits / tau, -1)
                out["kl"] = tau * tau * (pt.exp() * (pt - ps)).sum() / n_labels
            kept = cfg.d if keep is None else keep.sum()
            tokens = n_sequences * L
            hidden = torch.zeros((), device=self.device)
            for k in range(cfg.layers + 1):
                name = "embeddings" if k == 0 else f"hidden.{k - 1}"
                if name not in self.W:
                    continue
                # Student hidden state k against the teacher's m(k) (k = 0: the embeddings' output).
                tk = 0 if k == 0 else self.layer_map[k - 1] + 1
                diff = hs[k] - ths[tk] @ self.W[name].T
                if keep is not None:
                    diff = diff * keep
                mse = (diff * diff).sum() / (tokens * kept)
                if k == 0:
                    out["embedding"] = mse
                else:
                    hidden = hidden + mse
            if self.proj_names or self.alpha_a > 0:
                out["hidden"] = hidden
                out.setdefault("embedding", torch.zeros((), device=self.device))
                att = torch.zeros((), device=self.device)
                if self.alpha_a > 0:
                    for j, p in enumerate(probs):
                        att = att + ((p - tprobs[self.layer_map[j]]) ** 2).sum() / (n_sequences * cfg.heads * L * L)
                out["attention"] = att
            # The last hidden states of each model (the student may be shallower: --keep-layers).
            if self.alpha_pooled > 0 or (self.head == "none" and not grad):
                cos = pooled_cosine(hs[-1], ths[-1], self.a.pooling, keep)
                if self.alpha_pooled > 0:
                    out["pooled"] = (1 - cos).sum() / n_sequences
                if self.head == "none" and not grad:
                    out["cosine"] = cos.sum()
            if self.alpha_cc > 0 and grad:
                # A training term only (hd-distill's evaluation does not report it); with several ranks it
                # all-gathers, so it must not run in rank 0's evaluation.
                out["cc"] = self.cross_correlation(hs[-1], ths[-1], keep)
        return out

    def cross_correlation(self, student, teacher, keep):
        """`CrossCorrelationLoss` over the whole micro-batch's tokens. Its statistics (column means, variances,
        C) are not sums over sequences, so with several ranks the last hidden states are all-gathered and
        every rank computes the whole term, its gradient flowing into its own rows only; the value it
        reports is the term / ranks, so that the all-reduced sum of the logged terms is the term."""
        d = student.shape[-1]
        zs, zt = student.reshape(-1, d), teacher.reshape(-1, d)
        if self.world > 1:
            parts = [torch.empty_like(zs) for _ in range(self.world)]
            dist.all_gather(parts, zs.detach().contiguous())
            parts[self.rank] = zs
            zs = torch.cat(parts)
            parts = [torch.empty_like(zt) for _ in range(self.world)]
            dist.all_gather(parts, zt.contiguous())
            zt = torch.cat(parts)
        loss = cross_correlation_loss(zs, zt, keep, self.cc_lambda)
        if self.world == 1:
            return loss
        # Value: the term / ranks; gradient: the whole term's.
        return loss.detach() / self.world + (loss - loss.detach())

    def weighted(self, t):
        total = torch.zeros((), device=self.device)
        if "mlm" in t:
            total = total + self.alpha_mlm * t["mlm"]
        if "kl" in t:
            total = total + self.alpha_kl * t["kl"]
        if "hidden" in t:
            total = total + self.alpha_h * t["hidden"] + self.alpha_a * t["attention"] + self.alpha_e * t["embedding"]
        if "pooled" in t:
            total = total + self.alpha_pooled * t["pooled"]
        if "cc" in t:
            total = total + self.alpha_cc * t["cc"]
        return total

    def allreduce(self, tensors):
        if self.world > 1:
            flat = torch.cat([t.reshape(-1) for t in tensors])
            dist.all_reduce(flat)
            offset = 0
            for t in tensors:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()

    def train_step(self):
        a, cfg = self.a, self.cfg
        for t in list(self.P.values()) + list(self.W.values()):
            t.grad = None
        w = 1.0 / a.accumulate
        sums = {}
        for _ in range(a.accumulate):
            ids, positions, labels = self.global_batch(self.order, self.rng)
            lids, lpos, llab = self.local(ids, positions, labels)
            t = self.terms(lids, lpos, llab, len(labels), a.batch, grad=True)
            total = self.weighted(t) * w
            if total.requires_grad:  # not when every weight is 0
                total.backward()
            for k, v in t.items():
                sums[k] = sums.get(k, 0.0) + v.detach().double()
        keys = sorted(k for k in sums if k not in ("correct", "cosine"))
        values = torch.stack([sums[k] for k in keys]) if keys else torch.zeros(0, dtype=torch.float64, device=self.device)
        self.allreduce([values])
        terms = {k: float(v) / a.accumulate for k, v in zip(keys, values)}
        grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in self.P.items()}
        pgrads = {n: (w_.grad if w_.grad is not None else torch.zeros_like(w_)) for n, w_ in self.W.items()}
        self.allreduce(list(grads.values()) + list(pgrads.values()))
        allg = list(grads.values()) + list(pgrads.values())
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in allg))
        if not math.isfinite(norm):
            raise FloatingPointError(f"step {self.step + 1}: gradient norm is {norm}; stopped before updating the weights")
        for k, v in terms.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"step {self.step + 1}: {k} is {v}; stopped before updating the weights")
        prune_seconds = None
        if self.pruner:
            started = time.perf_counter()
            moments = [{n: self.m[n] for n in self.names}, {n: self.v[n] for n in self.names}]
            self.pruner.after_backward(self.step + 1, self.P, grads, moments)
            # On the schedule's steps, not on "changed": every rank must enter the collective.
            if self.pruner.updates(self.step + 1) and self.world > 1:
                self.check_masks()
            prune_seconds = time.perf_counter() - started
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in allg))
        if a.clip_norm > 0:
            factor = float(F32(a.clip_norm / (norm + 1e-6)))
            if factor < 1:
                for g in allg:
                    g.mul_(factor)
        lr = lr_at(a.lr, a.warmup, a.steps, self.step)
        for n, p in self.P.items():
            adamw(p, grads[n], self.m[n], self.v[n], self.step + 1, lr, p.dim() > 1, a.weight_decay)
        for n, w_ in self.W.items():
            adamw(w_, pgrads[n], self.m["hd.proj." + n], self.v["hd.proj." + n], self.step + 1, lr, False, a.weight_decay)
        self.step += 1
        rec = {"kind": "train", "step": self.step, "lr": float(lr), "grad_norm": norm}
        weights = {"mlm": self.alpha_mlm, "kl": self.alpha_kl, "hidden": self.alpha_h, "attention": self.alpha_a,
                   "embedding": self.alpha_e, "pooled": self.alpha_pooled, "cc": self.alpha_cc}
        rec["loss"] = sum(weights[k] * v for k, v in terms.items())
        # The terms hd-distill logs: mlm (an MLM head), kl, the layer terms, pooled, cc — when the run has them.
        rec.update(terms)
        if self.pruner:
            hidden, ffns, heads = self.pruner.widths()
            head = "none" if self.head == "none" else "untied" if "cls.predictions.decoder.weight" in self.P else "tied"
            params, flops = model_size(cfg, hidden, ffns, heads, "bert.pooler.dense.weight" in self.frozen, head)
            rec.update(width_hidden=hidden, width_ffn=max(ffns), width_head=max(heads), parameters=params,
                       flops_per_128_token_sequence=flops, prune_seconds=prune_seconds)
        if a.check_ranks and self.world > 1:
            self.check_ranks()
        return rec

    def check_masks(self):
        """After every mask update: every rank must have chosen the same units (always checked; the
        masks are a few thousand floats)."""
        mine = torch.cat([m.reshape(-1) for m in self.pruner.masks.values()])
        lo, hi = mine.clone(), mine.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise RuntimeError(f"step {self.step + 1}: ranks chose different masks ({int((lo != hi).sum())} units differ)")

    def check_ranks(self):
        """Every rank must hold bit-identical weights, masks and importance: an element-wise MIN and MAX
        all-reduce of all of them must agree exactly (a debugging aid: it costs two all-reduces of the model)."""
        parts = [p.detach().reshape(-1) for p in self.P.values()] + [w.detach().reshape(-1) for w in self.W.values()]
        if self.pruner:
            parts += [m.reshape(-1) for m in self.pruner.masks.values()]
            parts += [t.reshape(-1) for t in list(self.pruner.mean.values()) + list(self.pruner.unc.values())]
        mine = torch.cat(parts)
        lo, hi = mine.clone(), mine.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            bad = int((lo != hi).sum())
            raise RuntimeError(f"step {self.step}: ranks disagree in {bad} values of weights, masks or importance")

    # ----------------------------------------------------------------------------- evaluation

    def evaluate(self):
        """`Trainer.evaluate`: the first --eval-sequences held-out sequences; with an MLM head masked by a
        generator seeded with seed ^ 0x6576616C every time (MLM loss, top-1, KL), without one as they are
        (the mean pooled-embedding cosine); the layer terms token-weighted. A short last batch is filled
        from the start of the split and only its real sequences count."""
        a, L = self.a, self.a.seq_len
        available = min(a.eval_sequences, self.data.count("held_out"))
        rng = Xoshiro256(seed=a.seed ^ 0x6576616C)
        loss = kl = cosine = 0.0
        correct = labels_n = tokens = 0
        layer = {"hidden": 0.0, "attention": 0.0, "embedding": 0.0}
        for start in range(0, available, a.batch):
            real = min(a.batch, available - start)
            indices = list(range(start, start + real)) + [i % available for i in range(a.batch - real)]
            ids, positions, labels = self.global_batch(None, rng, "held_out", indices)
            n = int(np.sum(positions < real * L))
            t = self.terms(self.tensor(ids[:real]), self.tensor(positions[:n]), self.tensor(labels[:n]),
                           n, real, grad=False)
            if "mlm" in t:
                loss += float(t["mlm"]) * n
                correct += int(t["correct"])
                labels_n += n
            if "kl" in t:
                kl += float(t["kl"]) * n
            if "cosine" in t:
                cosine += float(t["cosine"])
            if "hidden" in t:
                for k in layer:
                    layer[k] += float(t[k]) * real * L
                tokens += real * L
        rec = {"kind": "eval", "step": self.step, "sequences": available}
        if self.head == "mlm":
            rec.update(mlm=loss / labels_n, accuracy=correct / labels_n)
            if self.T is not None:
                rec["kl"] = kl / labels_n
        elif self.T is not None:
            rec["pooled_cosine"] = cosine / available
        if tokens:
            rec.update({k: v / tokens for k, v in layer.items()})
        return rec

    # ----------------------------------------------------------------------------- checkpoints

    def checkpoint(self, path):
        host = lambda t: t.detach().cpu().numpy()  # noqa: E731
        tensors = {n: host(p) for n, p in self.P.items()}
        tensors.update({n: host(t) for n, t in self.frozen.items()})
        for n, w_ in self.W.items():
            tensors["hd.proj." + n] = host(w_)
        for n in self.m:
            tensors["hd.adam.m." + n] = host(self.m[n])
            tensors["hd.adam.v." + n] = host(self.v[n])
        if self.pruner:
            for g, m in self.pruner.masks.items():
                tensors["hd.mask." + g] = host(m).astype(np.int32)
            if self.popts["importance"] == "platon":
                for n in self.names:
                    tensors["hd.importance.mean." + n] = host(self.pruner.mean[n])
                    tensors["hd.importance.uncertainty." + n] = host(self.pruner.unc[n])
        meta = {"hd.format": "1", "hd.kind": "student", "hd.config": self.cfg.raw, "hd.vocab": "\n".join(self.vocab),
                "hd.do_lower_case": "true" if self.lowercase else "false", "hd.step": str(self.step),
                "hd.rng": " ".join("%016x" % w for w in self.rng.s),
                "hd.data": '{"epoch":%d,"position":%d,"seed":"%016x"}' % (self.order.epoch, self.order.position, self.a.seed),
                "hd.recipe": json.dumps(self.recipe(), sort_keys=True, separators=(",", ":"))}
        if self.teacher_sha:
            meta["hd.teacher.sha256"] = self.teacher_sha
        if self.a.teacher_layers is not None:
            meta["hd.teacher_layers"] = ",".join(str(i) for i in self.a.teacher_layers)
        write_safetensors(path, {k: np.asarray(v, dtype=v.dtype) for k, v in tensors.items()}, meta)

    def restore(self, path):
        tensors, meta = read_safetensors(path, mmap=False)
        if meta.get("hd.kind") != "student":
            raise FileError(f"{path}: expected a student.ckpt (hd.kind \"student\"), found {meta.get('hd.kind')!r}")
        # Before the config: a different map usually means a different depth, and this names why.
        saved_map = meta.get("hd.teacher_layers")
        my_map = None if self.a.teacher_layers is None else ",".join(str(i) for i in self.a.teacher_layers)
        if saved_map != my_map:
            said = lambda m: f"teacher layers {m} (--keep-layers)" if m else "every teacher layer (no --keep-layers)"  # noqa: E731
            raise FileError(f"{path}: resume: metadata hd.teacher_layers: the checkpoint's student distils {said(saved_map)}, "
                            f"this run's {said(my_map)}" + (f"; pass --keep-layers {saved_map}" if saved_map else "; drop --keep-layers"))
        if json.loads(meta["hd.config"]) != json.loads(self.cfg.raw):
            raise FileError(f"{path}: resume: the checkpoint's config differs from the student's (another teacher or --keep-layers?)")
        recipe = json.loads(meta["hd.recipe"])
        mine = self.recipe()
        if recipe != mine:
            diff = sorted(k for k in set(recipe) | set(mine) if recipe.get(k) != mine.get(k))
            raise FileError(f"{path}: resume: the recipe differs in " + ", ".join(
                f"{k} (checkpoint {recipe.get(k, 'unset')}, now {mine.get(k, 'unset')})" for k in diff))
        if meta.get("hd.teacher.sha256") != self.teacher_sha:
            raise FileError(f"{path}: resume: hd.teacher.sha256 is not this teacher's")
        data = json.loads(meta["hd.data"])
        if int(data["seed"], 16) != self.a.seed:
            raise FileError(f"{path}: resume: hd.data seed differs from --seed")
        self.step = int(meta["hd.step"])
        self.rng = Xoshiro256(state=[int(w, 16) for w in meta["hd.rng"].split(" ")])
        self.order = DataOrder(self.a.seed, self.data.count("train"), data["epoch"], data["position"])
        with torch.no_grad():
            for n, p in self.P.items():
                p.copy_(self.tensor(np.array(tensors[n])))
            for n, w_ in self.W.items():
                w_.copy_(self.tensor(np.array(tensors["hd.proj." + n])))
            for n in self.m:
                self.m[n].copy_(self.tensor(np.array(tensors["hd.adam.m." + n])))
                self.v[n].copy_(self.tensor(np.array(tensors["hd.adam.v." + n])))
        found_proj = sorted(k[8:] for k in tensors if k.startswith("hd.proj."))
        if found_proj != sorted(self.proj_names):
            raise FileError(f"{path}: resume: expected projections {self.proj_names}, found {found_proj}")
        masks = {k[8:]: v for k, v in tensors.items() if k.startswith("hd.mask.")}
        if self.pruner:
            for g in self.pruner.groups:
                if g not in masks:
                    raise FileError(f"{path}: resume: expected hd.mask.{g}")
                self.pruner.masks[g] = self.tensor(np.array(masks[g], dtype=np.float32))
            if self.popts["importance"] == "platon":
                for n in self.names:
                    self.pruner.mean[n] = self.tensor(np.array(tensors["hd.importance.mean." + n]))
                    self.pruner.unc[n] = self.tensor(np.array(tensors["hd.importance.uncertainty." + n]))
        elif masks:
            raise FileError(f"{path}: resume: expected no pruning masks (this recipe does not prune)")


def main(argv):
    a = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(a.threads)
    if a.device != "cpu":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1:
        dist.init_process_group("gloo" if a.device == "cpu" else "nccl")
    trainer = Trainer(a, rank, world)
    if a.resume:
        trainer.restore(a.resume)
    log = open(a.log, "a" if a.resume else "w") if (a.log and rank == 0) else None

    def write(rec):
        if log:
            log.write(json.dumps(rec, sort_keys=True) + "\n")
            log.flush()

    evaluates = trainer.data.count("held_out") > 0
    if rank == 0:
        print(f"hd_distill.py: {trainer.data.count('train')} training / {trainer.data.count('held_out')} held-out sequences of "
              f"{a.seq_len}, step {trainer.step} of {a.steps}, {world} process{'es' if world > 1 else ''}", file=sys.stderr)
    if trainer.step == 0 and evaluates and a.eval_every > 0 and rank == 0:
        write(trainer.evaluate())
    seconds, tokens, start_step = 0.0, 0, trainer.step
    last = min(a.steps, a.stop_after) if a.stop_after is not None else a.steps
    while trainer.step < last:
        started = time.perf_counter()
        rec = trainer.train_step()
        elapsed = time.perf_counter() - started
        seconds += elapsed
        tokens += a.accumulate * a.batch * a.seq_len
        rec["step_seconds"] = elapsed
        write(rec)
        finished = trainer.step >= last
        if rank == 0 and evaluates and ((a.eval_every > 0 and trainer.step % a.eval_every == 0) or finished):
            write(trainer.evaluate())
        if rank == 0 and ((a.save_every > 0 and trainer.step % a.save_every == 0) or finished):
            trainer.checkpoint(a.output)
    write({"kind": "summary", "step": trainer.step, "tokens": tokens, "train_seconds": seconds,
           "tokens_per_second": tokens / seconds if seconds else 0, "processes": world, "threads": a.threads})
    if rank == 0:
        print(f"hd_distill.py: done at step {trainer.step}: {tokens / seconds if seconds else 0:.0f} training tokens/s "
              f"over {trainer.step - start_step} steps", file=sys.stderr)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UsageError as e:
        print(f"hd_distill.py: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except (FileError, FloatingPointError, KeyError, ValueError, OSError) as e:
        print(f"hd_distill.py: error: {e}", file=sys.stderr)
        sys.exit(EXIT_DATA)
