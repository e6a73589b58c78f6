#!/usr/bin/env python3
"""Writes docs/RESULTS.md's int8 / bf16 accuracy table from the JSON of tools/quant_accuracy.py.

    python3 tools/quant_results.py [--shipped J] [--warm J] [--onnxruntime J] [--onnxruntime-all J] [--results docs/RESULTS.md]

The defaults are the AMX runs of 6 Dec 2026 (docs/PERFORMANCE.md, "int8 and bf16 on AMX tiles"):
hd-infer against its own fp32 with splade-tiny as shipped (`--shipped`) and warmed (`--warm`), and
the `--onnxruntime --classifier` run (`--onnxruntime`), which repeats hd-infer's figures on the
warmed model and adds onnxruntime's int8 and the classifiers; and the same run on every qualifying
line of the text (`--onnxruntime-all`) for the fill-mask agreement with less noise. Standard
library only.
"""
import argparse
import json
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- quant:begin (tools/quant_results.py) -->", "<!-- quant:end -->"
BENCH = REPO / "docs/bench/2026-12-06"


def percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def spread(classifiers: list[dict], run: str, key: str) -> str:
    """mean ± std (percent) over the classifiers (seeds) of one run's figure."""
    values = [100 * c["runs"][run][key] for c in classifiers]
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(shipped: dict, warm: dict, ort: dict, ort_all: dict) -> str:
    classifiers = ort["classifiers"]
    n, n_all = warm["sentences"], ort_all["sentences"]
    lines = ["| runtime, precision | MiniLM embedding cosine with fp32, mean (min) | fill-mask top-1 = fp32's: splade-tiny as shipped"
             f" | warmed splade-tiny, {n} lines | warmed, all {n_all} lines | rt_polarity classifier dev accuracy (%) | its label = fp32's (%) |",
             "|---|---|---|---|---|---|---|"]
    lines.append(f"| hd-infer fp32 | 1 | | | | {spread(classifiers, 'hd-infer fp32', 'accuracy')} | |")
    for p in ("bf16", "int8"):
        s, w, run = shipped["precisions"][p], warm["precisions"][p], f"hd-infer {p}"
        lines.append(f"| hd-infer {p} | {s['minilm_cosine_mean']:.6f} ({s['minilm_cosine_min']:.6f}) | {percent(s['splade_tiny_top1_agreement'])}"
                     f" | {percent(w['splade_tiny_top1_agreement'])} | {percent(ort_all['precisions'][p]['splade_tiny_top1_agreement'])}"
                     f" | {spread(classifiers, run, 'accuracy')}"
                     f" | {spread(classifiers, run, 'label_agreement_with_own_fp32')} |")
    e, f = ort["onnxruntime_int8"], ort["onnxruntime_int8_fill_mask"]
    lines.append(f"| onnxruntime fp32 | 1 | | | | {spread(classifiers, 'onnxruntime fp32', 'accuracy')} | |")
    lines.append(f"| onnxruntime int8 | {e['cosine_with_own_fp32_mean']:.6f} ({e['cosine_with_own_fp32_min']:.6f}) | not run"
                 f" | {percent(f['top1_agreement_with_own_fp32'])}"
                 f" | {percent(ort_all['onnxruntime_int8_fill_mask']['top1_agreement_with_own_fp32'])}"
                 f" | {spread(classifiers, 'onnxruntime int8', 'accuracy')}"
                 f" | {spread(classifiers, 'onnxruntime int8', 'label_agreement_with_own_fp32')} |")
    c = classifiers[0]
    agreement = min(x["torch_matches_hd_infer_fp32"] for x in classifiers)
    notes = [
        "",
        f"The first {shipped['sentences']} held-out lines of 40–400 characters of `{shipped['source']}` (embeddings, "
        f"fill-mask: the middle word masked), and all {n_all} such lines for the second warmed column; "
        f"the classifiers on all {c['examples']} rows of `{c['dev']}`. Each runtime's int8 against its "
        f"own fp32; the two fp32s agree: embedding cosine {e['fp32_cosine_onnxruntime_vs_hd_infer_mean']:.6f}, fill-mask "
        f"top-1 {percent(f['fp32_top1_agreement_onnxruntime_vs_hd_infer'])}, classifier labels at least "
        f"{percent(agreement)}. Classifier figures: mean ± std over {len(classifiers)} fine-tuning seeds "
        f"({', '.join('`' + Path(x['checkpoint']).name + '`' for x in classifiers)}). onnxruntime {e['onnxruntime']}, {e['quantisation']} "
        "(which also quantises the masked-LM and classifier heads; hd-infer keeps them in fp32).",
    ]
    return "\n".join(lines + notes)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shipped", default=str(BENCH / "accuracy-quant-amx.json"))
    p.add_argument("--warm", default=str(BENCH / "accuracy-quant-warm-amx.json"))
    p.add_argument("--onnxruntime", default=str(BENCH / "accuracy-quant-onnxruntime-amx.json"))
    p.add_argument("--onnxruntime-all", default=str(BENCH / "accuracy-quant-onnxruntime-amx-all.json"))
    p.add_argument("--results", default=str(REPO / "docs/RESULTS.md"))
    args = p.parse_args()
    shipped, warm, ort, ort_all = (json.loads(Path(f).read_text())
                                   for f in (args.shipped, args.warm, args.onnxruntime, args.onnxruntime_all))
    results = Path(args.results)
    text = results.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{results}: markers {BEGIN} … {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    results.write_text(head + BEGIN + "\n\n" + table(shipped, warm, ort, ort_all) + "\n\n" + END + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
