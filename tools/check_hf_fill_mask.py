#!/usr/bin/env python3
"""Check that transformers loads an `hd-export --hf-dir` directory cleanly and fills masks as hd-infer does.

    .venv-torch/bin/python tools/check_hf_fill_mask.py HF_DIR STUDENT [HD_INFER]

HF_DIR is what `hd-export --shrink STUDENT --hf-dir HF_DIR` wrote (zero-padded heads when the student's
head size is below hidden / heads); STUDENT is what hd-infer runs (the student.ckpt or the exported
safetensors); HD_INFER defaults to .build/release/hd-infer. Loads HF_DIR with
BertForMaskedLM.from_pretrained, failing on any warning it logs or raises and on any missing,
unexpected or mismatched weight; then, for each sentence, compares transformers' top-5 tokens at the
[MASK] with `hd-infer fill-mask --json --top-k 5` on STUDENT (same ids, in order; logits within 1e-4
of the largest). Exits 1 on any difference. By hand only: needs torch (.venv-torch, tools/venv-torch.sh).
"""
import json
import logging
import subprocess
import sys
import warnings

import torch
import transformers
from transformers import BertForMaskedLM, BertTokenizer

SENTENCES = [
    "the cat sat on the [MASK] and ate the fish.",
    "paris is the capital of [MASK].",
    "homodistil prunes a bert while it [MASK] it.",
]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def main():
    hf_dir, student = sys.argv[1], sys.argv[2]
    hd_infer = sys.argv[3] if len(sys.argv) > 3 else ".build/release/hd-infer"
    collected = Collect()
    transformers.logging.get_logger().addHandler(collected)
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        model, info = BertForMaskedLM.from_pretrained(hf_dir, output_loading_info=True)
    problems = [f"{k}: {v}" for k, v in info.items() if v] + collected.records + [str(w.message) for w in raised]
    model.eval()
    tokenizer = BertTokenizer(f"{hf_dir}/vocab.txt")
    failures = 0
    worst = 0.0
    for text in SENTENCES:
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits[0]
        position = int((batch["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0])
        top = torch.topk(logits[position], 5)
        ours = json.loads(subprocess.run([hd_infer, "fill-mask", student, text, "--json", "--top-k", "5", "--threads", "1"],
                                         check=True, capture_output=True, text=True).stdout)["predictions"][0]
        theirs_ids = top.indices.tolist()
        ours_ids = [p["id"] for p in ours]
        scale = float(logits[position].abs().max())
        error = max(abs(p["logit"] - float(logits[position][p["id"]])) for p in ours) / scale
        worst = max(worst, error)
        same = theirs_ids == ours_ids and error <= 1e-4
        failures += not same
        print(f"{'ok  ' if same else 'DIFF'} {text!r}: transformers {tokenizer.convert_ids_to_tokens(theirs_ids)}, "
              f"hd-infer {[p['token'] for p in ours]}, logits max relative difference {error:.2g}")
    for p in problems:
        print(f"loading {hf_dir}: {p}")
    print(f"{hf_dir}: transformers {transformers.__version__} loads it with {len(problems)} warnings; "
          f"{len(SENTENCES) - failures}/{len(SENTENCES)} fill-mask top-5 equal hd-infer's (max logit difference {worst:.2g})")
    sys.exit(0 if failures == 0 and not problems else 1)


if __name__ == "__main__":
    main()
