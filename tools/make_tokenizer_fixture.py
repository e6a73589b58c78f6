#!/usr/bin/env python3
"""Reference fixtures for HDTokenizer, produced by Hugging Face's BertTokenizer.

The reference is transformers 5.x `BertTokenizer` (backed by the `tokenizers` crate: BertNormalizer +
BertPreTokenizer + WordPiece), the tokenizer every current HF pipeline loads. The classic pure-Python
tokenizer (`BertTokenizerLegacy` in v5, `BertTokenizer` in v4) is run on the same inputs; where the two
disagree the fixture records the legacy ids too, and the run prints how often that happens.

Only public-domain corpora are sampled (janeausten, mobydick, tidytext_books): the others' licences
forbid committing excerpts. Sampling is deterministic (fixed seed), so reruns give identical files.

usage: make_tokenizer_fixture.py [--data DIR] [--out REPO_ROOT]
"""
import argparse
import hashlib
import json
import os
import random
import shutil

from tokenizers import Tokenizer
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import load_vocab
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

CORPORA = [("janeausten.txt", 2500), ("mobydick.txt", 1500), ("tidytext_books.txt", 1500)]
SEED = 20240611

HARD_CASES = [
    ("accents", "Héllo Wörld"),
    ("accents2", "naïve café résumé Ångström"),
    ("cjk", "我爱北京天安门"),
    ("cjk_mixed", "BERT模型is很好"),
    ("cjk_ext_b", "𠀀𠀁 x"),
    ("compat_ideograph", "豈更"),
    ("cjk_ext_e_gap", "a\U0002B820b c\U0002B920d"),
    ("hiragana_katakana", "こんにちは カタカナ"),
    ("korean", "안녕하세요 세계"),
    ("emoji", "I ❤️ 🍕"),
    ("emoji_zwj_family", "👨‍👩‍👧 family"),
    ("control_chars", "\u0000\u0007\tx\u200b"),
    ("controls_mixed", "a\u0001b\u001fc\u007fd\u0085e\u000bf\u000cg"),
    ("replacement_char", "bad\ufffdbyte"),
    ("zero_width", "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom"),
    ("combining_marks", "e\u0301te\u0301 a\u0300 o\u0308\u0304"),
    ("combining_only", "\u0301\u0302\u0303"),
    ("mask_inside", "The capital of France is [MASK]."),
    ("specials_glued", "x[MASK]y[SEP]z[CLS][PAD][UNK]"),
    ("specials_lower", "[mask] [Mask] [ MASK ]"),
    ("long_word", "a" * 101),
    ("word_100", "b" * 100),
    ("long_word_accented", "é" * 60 + "e" * 41),
    ("empty", ""),
    ("whitespace_only", " \t\n\r\u00a0\u3000 "),
    ("punct_run", "!!!???"),
    ("punct_unicode", "«quoted» — dash… ¿qué? ¡sí! 「括弧」"),
    ("numbers", "3.14159 1,000,000 2nd 10%"),
    ("url", "https://example.com/path?q=1&x=y#frag"),
    ("email", "someone@example.org"),
    ("mixed_scripts", "Hello мир 世界 مرحبا"),
    ("arabic", "مرحبا بالعالم"),
    ("hindi", "नमस्ते दुनिया"),
    ("thai", "สวัสดีชาวโลก"),
    ("greek", "Καλημέρα κόσμε ΣΑΣ"),
    ("greek_sigma", "ΣΑΣ"),
    ("cyrillic", "ПРИВЕТ Мир Ёлка"),
    ("turkish", "İstanbul IŞIK ılık"),
    ("german", "Straße STRASSE Maß \u1e9e"),
    ("dotless_i_mix", "I\u0307 \u0131\u0307 \u0130\u0301"),
    ("ligatures", "ﬁne ﬂow ﬀ"),
    ("fullwidth", "ＡＢＣ ｄｅｆ １２３"),
    ("symbols", "$100 + €50 = £? © ® ™ ° ± ×"),
    ("math", "∀x ∈ ℝ: x² ≥ 0"),
    ("separators", "line\u2028sep\u2029para\u00a0nbsp\u2009thin"),
    ("tabs_newlines", "a\tb\nc\r\nd"),
    ("apostrophes", "don't won’t it's"),
    ("hyphens", "well-known state-of-the-art"),
    ("unknown_char", "\u2603 snowman \U0001F600"),
    ("private_use", "a\ue000b"),
    ("unassigned", "a\u0378b c\U000E0080d"),
    ("angstrom_sign", "\u212b \u2126"),
    ("hangul_jamo", "\u1100\u1161\u11a8"),
    ("devanagari_nukta", "क़ ज़"),
    ("vietnamese", "Tiếng Việt có dấu"),
]

PAIR_CASES = [
    # (a, b, max_length, truncation, padding)
    ("The cat sat on the mat.", "It was happy.", None, False, "none"),
    ("The cat sat on the mat.", None, 8, True, "none"),
    ("The cat sat on the mat.", None, 16, True, "max_length"),
    ("The cat sat on the mat.", None, None, False, "multiple:8"),
    ("a b c d e f g h i j", "k l m n o p q r s t", 9, True, "none"),
    ("a b c d e f g h i j", "k l m n o p q r s t", 8, True, "none"),
    ("a b c d e f g h i j k l", "m n o p q r s t u v", 8, True, "none"),
    ("a b c d e f g h i j", "k l m n o p q r s t u v", 8, True, "none"),
    ("a b c d e f g h i j k l", "m n o p q r s t u v", 9, True, "none"),
    ("a b c d e f g h i j", "k", 6, True, "none"),
    ("a", "b c d e f g h i j k", 6, True, "none"),
    ("a b", "c d", 16, True, "max_length"),
    ("a b", "c d", None, False, "multiple:4"),
    ("a b c", "d e f g h i j", 8, True, "multiple:8"),
    ("It is a truth universally acknowledged", "that a single man in possession", 12, True, "max_length"),
    ("Call me Ishmael.", "Some years ago—never mind how long precisely", 16, True, "multiple:16"),
    ("", "", None, False, "none"),
    ("a", "", None, False, "none"),
    ("", "only b", 5, True, "max_length"),
    ("x " * 40, None, 32, True, "max_length"),
]


def sample_lines(path, n, rng):
    with open(path, encoding="utf-8") as f:
        lines = [(i + 1, l.rstrip("\n")) for i, l in enumerate(f)]
    lines = [(i, l) for i, l in lines if l.strip()]
    picked = rng.sample(lines, n)
    picked.sort()
    return picked


def encode_pair(tok, a, b, max_length, truncation, padding):
    if b == "":
        # transformers' __call__ drops a falsy pair; BertTokenizerLegacy and the tokenizers backend
        # both keep it ([CLS] a [SEP] [SEP]), and so does HDTokenizer: take the backend's answer.
        assert max_length is None and not truncation and padding == "none"
        backend = Tokenizer.from_str(tok._tokenizer.to_str())  # without the wrapper's padding state
        backend.no_padding()
        backend.no_truncation()
        enc = backend.encode(a, b)
        return {"input_ids": enc.ids, "token_type_ids": enc.type_ids, "attention_mask": enc.attention_mask}
    kwargs = {}
    if max_length is not None:
        kwargs["max_length"] = max_length
    kwargs["truncation"] = "longest_first" if truncation else False
    if padding == "max_length":
        kwargs["padding"] = "max_length"
    elif padding.startswith("multiple:"):
        kwargs["padding"] = True
        kwargs["pad_to_multiple_of"] = int(padding.split(":")[1])
    return tok(a, b, **kwargs) if b is not None else tok(a, **kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    vocab_src = os.path.join(args.data, "models", "splade-tiny", "vocab.txt")
    vocab_dst = os.path.join(args.out, "fixtures", "vocab", "bert-base-uncased.txt")
    out_dir = os.path.join(args.out, "fixtures", "tokenizer")
    os.makedirs(os.path.dirname(vocab_dst), exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copyfile(vocab_src, vocab_dst)

    vocab = load_vocab(vocab_dst)
    ref = {lc: BertTokenizer(vocab=dict(vocab), do_lower_case=lc) for lc in (True, False)}
    legacy = {lc: BertTokenizerLegacy(vocab_file=vocab_dst, do_lower_case=lc) for lc in (True, False)}

    rng = random.Random(SEED)
    disagreements = 0
    written = []
    path = os.path.join(out_dir, "corpus_uncased.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for name, n in CORPORA:
            for line_no, text in sample_lines(os.path.join(args.data, "text", name), n, rng):
                ids = ref[True](text)["input_ids"]
                row = {"source": f"{name}:{line_no}", "text": text, "ids": ids}
                legacy_ids = legacy[True](text)["input_ids"]
                if legacy_ids != ids:
                    disagreements += 1
                    row["legacy_ids"] = legacy_ids
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    written.append(path)
    print(f"corpus: v5 BertTokenizer and BertTokenizerLegacy disagree on {disagreements} lines")

    path = os.path.join(out_dir, "hard_cases.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for lc in (True, False):
            for name, text in HARD_CASES:
                tok = ref[lc]
                ids = tok(text)["input_ids"]
                row = {"name": name, "lowercase": lc, "text": text, "ids": ids,
                       "tokens": tok.convert_ids_to_tokens(ids),
                       "decoded": legacy[lc].convert_tokens_to_string(legacy[lc].convert_ids_to_tokens(ids[1:-1]))}
                legacy_ids = legacy[lc](text)["input_ids"]
                if legacy_ids != ids:
                    row["legacy_ids"] = legacy_ids
                    print(f"hard case {name} (lowercase={lc}): legacy differs:",
                          tok.convert_ids_to_tokens(ids), legacy[lc].convert_ids_to_tokens(legacy_ids))
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    written.append(path)

    path = os.path.join(out_dir, "pairs.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for a, b, max_length, truncation, padding in PAIR_CASES:
            enc = encode_pair(ref[True], a, b, max_length, truncation, padding)
            row = {"a": a, "b": b, "max_length": max_length, "truncation": truncation, "padding": padding,
                   "ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                   "attention_mask": enc["attention_mask"]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    written.append(path)
    written.append(vocab_dst)

    with open(os.path.join(out_dir, "MANIFEST"), "w") as f:
        f.write("# generated by tools/make_tokenizer_fixture.py (transformers BertTokenizer, tokenizers backend)\n")
        for p in written:
            digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
            f.write(f"{digest}  {os.path.relpath(p, args.out)}\n")


if __name__ == "__main__":
    main()
