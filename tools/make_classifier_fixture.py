#!/usr/bin/env python3
"""A transformers-made sequence classifier and its reference outputs: fixtures/tiny-classifier/.

    .venv-torch/bin/python tools/make_classifier_fixture.py     (tools/venv-torch.sh makes the venv)
    then: python3 tools/make_fixtures.py --manifest-only

Builds a seeded, untrained `BertForSequenceClassification` (2 layers, hidden 32, 4 heads, FFN 64, the
100-token vocabulary of fixtures/tiny-bert, 3 labels "negative", "neutral", "positive"; no fine-tuning:
the weights are transformers' own init, seeded) and saves it as transformers does
(`save_pretrained`: config.json with id2label/label2id, model.safetensors with `bert.*` and
`classifier.*`, the pooler included) plus vocab.txt and tokenizer_config.json. `initializer_range`
is 0.3 rather than 0.02 so that the untrained head's logits are far apart: every reference label
has a margin over the runner-up that no f32 rounding could flip (the smallest margin is printed and
recorded).

Writes fixtures/tiny-classifier/reference.json: for every group of inputs (single texts, text pairs,
text pairs cut at max_length 12 by truncation="longest_first"), what transformers' BertTokenizer
gives (input_ids, token_type_ids, attention_mask, padded to the group's longest) and what the model
in eval mode gives (logits, softmax probabilities, the argmax label). Output is byte-identical run
to run on one machine (torch's CPU kernels are deterministic here).
"""
import json
import os
import shutil
import tempfile

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "fixtures", "tiny-classifier")
TINY = os.path.join(REPO, "fixtures", "tiny-bert")
SEED = 20261206
LABELS = ["negative", "neutral", "positive"]

# Words of the tiny vocabulary only (fixtures/tiny-bert/vocab.txt), so nothing is [UNK] by accident.
TEXTS = [
    "the cat sat on the mat.",
    "a big red dog ran in the park!",
    "she was happy, he was not.",
    "the old man saw a small bird up in the tree.",
    "they were playing with a blue car at home.",
    "good day!",
    "it was a bad night and the moon was red.",
    "i read one new book, you read two old books.",
    "is this the house of the man?",
    "the sun is up and the birds are playing here.",
]
PAIRS = [
    ("the cat sat on the mat.", "a dog sat on the mat."),
    ("was it a good book?", "it was bad."),
    ("she ran to the park with a dog.", "they were at home."),
]
TRUNCATED_MAX_LENGTH = 12
TRUNCATED_PAIRS = [
    ("the old man saw a small bird up in the tree.", "it was red."),
    ("good day!", "they were playing with a blue car at home and the sun was up."),
    ("a big red dog ran in the park and a cat sat on the mat.", "the moon is blue and the sun is red."),
]


def group(model, tokenizer, texts, pairs=None, max_length=None):
    kwargs = {"padding": True, "return_tensors": "pt"}
    if max_length is not None:
        kwargs.update(truncation="longest_first", max_length=max_length)
    enc = tokenizer(texts, pairs, **kwargs) if pairs is not None else tokenizer(texts, **kwargs)
    with torch.no_grad():
        logits = model(**enc).logits.double()
    probabilities = torch.softmax(logits, dim=-1)
    rows = []
    margins = []
    for i, text in enumerate(texts):
        top2 = torch.topk(probabilities[i], 2).values
        margins.append(float(top2[0] - top2[1]))
        row = {"text": text}
        if pairs is not None:
            row["pair"] = pairs[i]
        row.update(input_ids=enc["input_ids"][i].tolist(), token_type_ids=enc["token_type_ids"][i].tolist(),
                   attention_mask=enc["attention_mask"][i].tolist(),
                   logits=[float(x) for x in logits[i]], probabilities=[float(x) for x in probabilities[i]],
                   label=LABELS[int(torch.argmax(logits[i]))])
        rows.append(row)
    return {"max_length": max_length, "examples": rows}, min(margins)


def main():
    torch.manual_seed(SEED)
    vocab = open(os.path.join(TINY, "vocab.txt"), encoding="utf-8").read().split("\n")
    vocab = [t for t in vocab if t]
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                        initializer_range=0.3, id2label=dict(enumerate(LABELS)),
                        label2id={label: i for i, label in enumerate(LABELS)},
                        problem_type="single_label_classification")
    model = BertForSequenceClassification(config).eval()

    scratch = tempfile.mkdtemp(dir=os.path.dirname(OUT))
    try:
        model.save_pretrained(scratch, safe_serialization=True)
        for name in ("vocab.txt", "tokenizer_config.json"):
            shutil.copyfile(os.path.join(TINY, name), os.path.join(scratch, name))
        tokenizer = BertTokenizer.from_pretrained(scratch)
        groups = {}
        margins = []
        groups["texts"], m = group(model, tokenizer, TEXTS)
        margins.append(m)
        groups["pairs"], m = group(model, tokenizer, [a for a, _ in PAIRS], [b for _, b in PAIRS])
        margins.append(m)
        groups["truncated_pairs"], m = group(model, tokenizer, [a for a, _ in TRUNCATED_PAIRS],
                                             [b for _, b in TRUNCATED_PAIRS], max_length=TRUNCATED_MAX_LENGTH)
        margins.append(m)
        for name in groups:
            for row in groups[name]["examples"]:
                assert tokenizer.unk_token_id not in row["input_ids"], f"[UNK] in {row}"
        reference = {
            "generator": "tools/make_classifier_fixture.py",
            "model": "tiny-classifier (BertForSequenceClassification, eval mode)",
            "labels": LABELS,
            "smallest_top2_margin": min(margins),
            "groups": groups,
        }
        with open(os.path.join(scratch, "reference.json"), "w", encoding="utf-8") as f:
            json.dump(reference, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.chmod(scratch, 0o755)
        for name in os.listdir(scratch):
            os.chmod(os.path.join(scratch, name), 0o644)
        if os.path.isdir(OUT):
            shutil.rmtree(OUT)
        os.replace(scratch, OUT)
    finally:
        if os.path.isdir(scratch):
            shutil.rmtree(scratch)
    sizes = {name: os.path.getsize(os.path.join(OUT, name)) for name in sorted(os.listdir(OUT))}
    print(f"wrote {OUT}: {sizes}; smallest top-2 probability margin {min(margins):.4f}")


if __name__ == "__main__":
    main()
