#!/usr/bin/env python3
"""Write fixtures/reference/adamw.json: torch.optim.AdamW on a small vector, step by step.

    make_adamw_reference.py [OUT]     (default fixtures/reference/adamw.json)

Run with the PyTorch venv (tools/venv-torch.sh creates .venv-torch). Two parameter groups (one with
weight decay, one without) share seeded gradients for several steps, each step at its own learning
rate, so the test covers bias correction, decoupled decay and a changing rate. Every float is the
exact float32 value, printed with 9 significant digits (enough to round-trip).
"""
import json
import os
import sys

import numpy as np
import torch

SEED = 20261122
STEPS = 6
N = 12
BETAS = (0.9, 0.999)
EPS = 1e-6
DECAY = 0.1
RATES = [1e-2, 2e-2, 3e-2, 2.5e-2, 1e-2, 5e-3]


def f32(values):
    return [float(f"{float(v):.9g}") for v in np.asarray(values, dtype=np.float32).ravel()]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "fixtures", "reference", "adamw.json")
    rng = np.random.default_rng(SEED)
    init = rng.standard_normal(2 * N).astype(np.float32)
    grads = (rng.standard_normal((STEPS, 2 * N)) * np.array([0.5], dtype=np.float32)).astype(np.float32)
    # A few zero and large gradients exercise v ≈ 0 and a dominant step.
    grads[1, 0] = 0.0
    grads[2, 3] = 40.0

    decayed = torch.nn.Parameter(torch.from_numpy(init[:N].copy()))
    plain = torch.nn.Parameter(torch.from_numpy(init[N:].copy()))
    opt = torch.optim.AdamW([{"params": [decayed], "weight_decay": DECAY},
                             {"params": [plain], "weight_decay": 0.0}],
                            lr=RATES[0], betas=BETAS, eps=EPS, foreach=False)
    after = []
    for s in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = RATES[s]
        decayed.grad = torch.from_numpy(grads[s, :N].copy())
        plain.grad = torch.from_numpy(grads[s, N:].copy())
        opt.step()
        after.append(f32(np.concatenate([decayed.detach().numpy(), plain.detach().numpy()])))
    state = [opt.state[decayed], opt.state[plain]]
    doc = {
        "generator": "tools/make_adamw_reference.py",
        "torch": torch.__version__,
        "beta1": BETAS[0], "beta2": BETAS[1], "epsilon": EPS, "weight_decay": DECAY,
        "decayed_count": N,
        "rates": RATES,
        "initial": f32(init),
        "gradients": [f32(g) for g in grads],
        "after_step": after,
        "m": f32(np.concatenate([state[0]["exp_avg"].numpy(), state[1]["exp_avg"].numpy()])),
        "v": f32(np.concatenate([state[0]["exp_avg_sq"].numpy(), state[1]["exp_avg_sq"].numpy()])),
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
