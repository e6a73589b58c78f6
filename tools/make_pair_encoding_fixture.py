#!/usr/bin/env python3
"""Reference encodings for HDTasks' TaskEncoder, from transformers' BertTokenizer.

Encodes single texts and sentence pairs on the committed bert-base-uncased vocabulary at max_length
16 and 32 with truncation="longest_first" (no padding), the call a Python fine-tuning script makes.
transformers 5's BertTokenizer runs the `tokenizers` crate; its longest-first cut differs on some
pairs from the pure-Python `truncate_sequences` of the slow tokenizer (BertTokenizerLegacy), which
is recorded as `legacy_ids` where the two disagree. Needs the torch venv (tools/venv-torch.sh).

usage: .venv-torch/bin/python tools/make_pair_encoding_fixture.py [--out REPO_ROOT]
"""
import argparse
import json
import os
import warnings

from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

LONG_A = ("the gorgeously elaborate continuation of \" the lord of the rings \" trilogy is so huge that a "
          "column of words cannot adequately describe co-writer/director peter jackson's expanded vision")
LONG_B = ("this church choir sings to the masses as they sing joyous songs from the book at a church , "
          "and the congregation answers with a hymn of its own")

CASES = [
    ("the rock is destined to be the 21st century's new \" conan \"", None),
    ("effective but too-tepid biopic", None),
    (LONG_A, None),
    ("A man inspects the uniform of a figure in some East Asian country.", "The man is sleeping"),
    ("a b c d", "e f g h"),
    ("a b c d e f g h i j k l m n o p", "q r s t u v w x y z a b c d e f"),
    ("a b c d e f g h i j k l m n o", "p q r s t u v w x y z a b c d e f"),
    ("a b c", "d e f g h i j k l m n o p q r s t u v w x y z"),
    ("d e f g h i j k l m n o p q r s t u v w x y z", "a b c"),
    (LONG_A, "short hypothesis ."),
    ("short premise .", LONG_B),
    (LONG_A, LONG_B),
    (LONG_B, LONG_A),
    ("Unaffable naïve café résumé!", "北京 is big"),
    ("x", "y"),
    ("one two three four five six", "seven eight nine ten eleven twelve"),
    ("one two three four five six seven", "eight nine ten eleven twelve thirteen"),
    ("don't won't it's can't shouldn't", "well-known state-of-the-art up-to-date"),
    ("tokenization unbelievably hyperparameterisation", "wordpiece subwords everywhere"),
    ("The church has cracks in the ceiling.", "The church is filled with song."),
    (" ".join(["word"] * 40), " ".join(["other"] * 3)),
    (" ".join(["word"] * 3), " ".join(["other"] * 40)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    vocab_path = os.path.join(args.out, "fixtures", "vocab", "bert-base-uncased.txt")
    tok = BertTokenizer(vocab=dict(load_vocab(vocab_path)), do_lower_case=True)
    legacy = BertTokenizerLegacy(vocab_file=vocab_path, do_lower_case=True)
    rows = []
    differ = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for max_length in (16, 32):
            for a, b in CASES:
                enc = tok(a, b, max_length=max_length, truncation="longest_first")
                row = {"a": a, "b": b, "max_length": max_length, "ids": enc["input_ids"],
                       "token_type_ids": enc["token_type_ids"]}
                old = legacy(a, b, max_length=max_length, truncation="longest_first")["input_ids"]
                if old != enc["input_ids"]:
                    row["legacy_ids"] = old
                    differ += 1
                rows.append(row)
    out = os.path.join(args.out, "fixtures", "tasks", "pair_encoding.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"vocab": "vocab/bert-base-uncased.txt", "lowercase": True, "cases": rows}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(rows)} cases; the legacy (pure-Python) truncation differs on {differ}")


if __name__ == "__main__":
    main()
