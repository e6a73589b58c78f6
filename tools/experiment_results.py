#!/usr/bin/env python3
"""Regenerates the "Evidence" section of docs/RESULTS.md and its two plots from the cells that
tools/experiment.py wrote under docs/results/evidence/ (no number in that section is typed by hand;
missing cells are marked missing). Standard library only.

    python3 tools/experiment_results.py            # rewrite the section and the SVG plots
    python3 tools/experiment_results.py --print    # print the section instead
"""
import argparse
import glob
import json
import os
import statistics

from results_section import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- evidence:begin (tools/experiment_results.py) -->", "<!-- evidence:end -->"
ORDER = ["g", "a", "b", "e", "f", "a2"]
NAMES = {"a": "(a) HomoDistil (cubic, PLATON)", "b": "(b) one-shot pruning, then distillation",
         "e": "(e) same shape, random init, distilled", "f": "(f) layer dropping (layers 1, 3, 5), distilled",
         "g": "(g) teacher: all-MiniLM-L6-v2", "a2": "(a) with 2× the tokens"}
# Students timed under another one's name: the same shape.
SAME_SHAPE = {"a2": "a"}
# Student layers, for the per-layer hidden-state MSE (the logged term sums over the student's layers).
LAYERS = {"f": 3}


def short(s):
    return {"g": "(g) teacher", "a2": "(a) 2×"}.get(s, NAMES[s][:3])
# The target for (a): at most this many points below the teacher, at least this much faster at 1 × 128.
TARGET_POINTS, TARGET_SPEEDUP = 2.0, 1.6


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def collect(directory):
    """Per student: distill, fidelity, zero-shot, fine-tuning accuracies; and the latency cell."""
    students = {}
    for s in ORDER:
        base = os.path.join(directory, f"minilm-half-{s}")
        runs = [load(p) for p in sorted(glob.glob(os.path.join(base, "rt_polarity-split*-seed*.json")))]
        students[s] = {"distill": load(os.path.join(base, "distill.json")), "fidelity": load(os.path.join(base, "fidelity.json")),
                       "zero_shot": load(os.path.join(base, "snli-zero-shot.json")), "rt": [r for r in runs if r]}
    return students, load(os.path.join(directory, "minilm-half-latency.json"))


def per_layer(s, distill):
    return distill["held_out"]["hidden"] / LAYERS.get(s, 6)


def accuracy(runs):
    values = [r["accuracy"] for r in runs]
    if not values:
        return None, None, 0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def fmt_accuracy(runs):
    mean, std, n = accuracy(runs)
    if mean is None:
        return "missing"
    return f"{100 * mean:.2f} ± {100 * std:.2f} ({n} seed{'s' if n > 1 else ''})" if n > 1 else f"{100 * mean:.2f} (1 seed)"


def table(students, latency, title):
    lines = [f"**{title}**", "",
             "| student | parameters | GFLOP / 128-token seq | p50 1 × 128 ms (speed-up) | p50 8 × 128 ms (speed-up) | held-out hidden MSE per layer / pooled cosine | embedding cosine to teacher (1,000 SNLI test sentences) | SNLI zero-shot ROC AUC | rt_polarity dev accuracy % | Δ vs teacher (points) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    teacher_mean = accuracy(students["g"]["rt"])[0]
    for s in ORDER:
        r = students[s]
        if s != "g" and not r["distill"] and not r["rt"]:
            continue
        lat = (latency or {}).get("models", {}).get(SAME_SHAPE.get(s, s))
        size = f"{lat['parameters'] / 1e6:.2f} M" if lat else (f"{r['distill']['parameters'] / 1e6:.2f} M" if r["distill"] else "missing")
        flops = lat["flops_per_128_token_sequence"] if lat else (r["distill"]["flops_per_128_token_sequence"] if r["distill"] else None)
        cells = [NAMES[s], size, f"{flops / 1e9:.2f}" if flops else "missing"]
        for shape in ("1x128", "8x128"):
            cells.append(f"{lat[f'p50_ms_{shape}']:.1f} ({lat[f'speedup_{shape}']:.2f}×)" if lat else "missing")
        if s == "g":
            cells.append("—")
            cells.append("1 (itself)")
        else:
            d = r["distill"]
            cells.append(f"{per_layer(s, d):.4f} / {d['held_out']['pooled_cosine']:.4f}" if d else "missing")
            f = r["fidelity"]
            cells.append(f"{f['mean_cosine']:.4f} ± {f['std_cosine']:.4f} (over {f['dimensions']} dims)" if f else "missing")
        z = r["zero_shot"]
        cells.append(f"{z['roc_auc']:.4f}" if z else "missing")
        cells.append(fmt_accuracy(r["rt"]))
        mean = accuracy(r["rt"])[0]
        cells.append("—" if s == "g" else (f"{100 * (mean - teacher_mean):+.2f}" if mean is not None and teacher_mean is not None else "missing"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target(students, latency):
    teacher, a = accuracy(students["g"]["rt"]), accuracy(students["a"]["rt"])
    lat = (latency or {}).get("models", {}).get("a")
    if teacher[0] is None or a[0] is None or not lat:
        return ["Target check: missing cells (teacher or (a) fine-tuning, or the latency cell)."]
    drop = 100 * (teacher[0] - a[0])
    speedup = lat["speedup_1x128"]
    verdict = lambda ok: "met" if ok else "missed"
    return [f"Target check for (a): {drop:.2f} points below the fine-tuned teacher (target ≤ {TARGET_POINTS:.1f}: "
            f"{verdict(drop <= TARGET_POINTS)}{'' if drop <= TARGET_POINTS else f', by {drop - TARGET_POINTS:.2f} points'}) and "
            f"{speedup:.2f}× faster at 1 × 128 on 2 threads (target ≥ {TARGET_SPEEDUP}: {verdict(speedup >= TARGET_SPEEDUP)})."]


def comparisons(students, base="a", others=("b", "e", "f")):
    """`base` against each of `others` on every figure: the differences the reading talks about."""
    out = []
    a = students[base]
    for s in others:
        if s not in students:
            continue
        o = students[s]
        parts = []
        (ma, sa, na), (mo, so, no) = accuracy(a["rt"]), accuracy(o["rt"])
        if ma is not None and mo is not None:
            spread = " (within the seeds' spread)" if na > 1 and no > 1 and abs(ma - mo) < max(sa, so) else ""
            parts.append(f"rt_polarity {100 * (ma - mo):+.2f} points{spread}")
        if a["fidelity"] and o["fidelity"]:
            parts.append(f"embedding cosine {a['fidelity']['mean_cosine'] - o['fidelity']['mean_cosine']:+.4f}")
        if a["zero_shot"] and o["zero_shot"]:
            parts.append(f"zero-shot AUC {a['zero_shot']['roc_auc'] - o['zero_shot']['roc_auc']:+.4f}")
        if a["distill"] and o["distill"]:
            parts.append(f"held-out hidden MSE per layer {per_layer(base, a['distill']) - per_layer(s, o['distill']):+.4f}")
            parts.append(f"held-out pooled cosine {a['distill']['held_out']['pooled_cosine'] - o['distill']['held_out']['pooled_cosine']:+.4f}")
        if parts:
            out.append(f"- {short(base)} − {short(s)}: " + ", ".join(parts))
    return out


def svg_accuracy_latency(students, latency, path):
    """Accuracy on rt_polarity (mean ± std over seeds) against p50 latency at 1 × 128."""
    points = []
    for s in ORDER:
        mean, std, n = accuracy(students[s]["rt"])
        lat = (latency or {}).get("models", {}).get(SAME_SHAPE.get(s, s))
        if mean is not None and lat:
            points.append((s, lat["p50_ms_1x128"], 100 * mean, 100 * std))
    if not points:
        return False
    W, H, M = 640, 420, 60
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = 0, max(xs) * 1.15
    y0, y1 = min(y - d for _, _, y, d in points) - 1, max(y + d for _, _, y, d in points) + 1
    X = lambda v: M + (v - x0) / (x1 - x0) * (W - 2 * M)
    Y = lambda v: H - M - (v - y0) / (y1 - y0) * (H - 2 * M)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{M}" y1="{H - M}" x2="{W - M}" y2="{H - M}" stroke="black"/><line x1="{M}" y1="{M}" x2="{M}" y2="{H - M}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">p50 latency, 1 × 128 tokens, 2 threads (ms)</text>',
           f'<text x="18" y="{H / 2}" text-anchor="middle" transform="rotate(-90 18 {H / 2})">rt_polarity dev accuracy (%), mean ± std over seeds</text>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="14">all-MiniLM-L6-v2 and its students: accuracy against latency</text>']
    for k in range(6):
        v = x0 + (x1 - x0) * k / 5
        out.append(f'<text x="{X(v):.1f}" y="{H - M + 16}" text-anchor="middle">{v:.0f}</text>')
        w = y0 + (y1 - y0) * k / 5
        out.append(f'<text x="{M - 6}" y="{Y(w) + 4:.1f}" text-anchor="end">{w:.1f}</text>')
        out.append(f'<line x1="{M}" y1="{Y(w):.1f}" x2="{W - M}" y2="{Y(w):.1f}" stroke="#ddd"/>')
    for s, x, y, d in points:
        colour = "black" if s == "g" else ("#c0392b" if s == "a" else "#2e86c1")
        out.append(f'<line x1="{X(x):.1f}" y1="{Y(y - d):.1f}" x2="{X(x):.1f}" y2="{Y(y + d):.1f}" stroke="{colour}"/>')
        shape = (f'<rect x="{X(x) - 5:.1f}" y="{Y(y) - 5:.1f}" width="10" height="10" fill="{colour}"/>' if s == "g"
                 else f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="5" fill="{colour}"/>')
        out.append(shape)
        out.append(f'<text x="{X(x) + 8:.1f}" y="{Y(y) - 6:.1f}">{short(s)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def svg_curves(students, path):
    """Held-out hidden-state MSE and pooled cosine over training, (a) against (b)."""
    series = {s: students[s]["distill"]["curve"] for s in ("a", "b") if students[s]["distill"]}
    if len(series) < 2:
        return False
    W, H, M = 640, 420, 60
    steps = max(r["step"] for c in series.values() for r in c)
    top = max(max(r["hidden"] for c in series.values() for r in c),
              max((r["hidden"] or 0) for s in series for r in students[s]["distill"]["train_curve"][20:])) * 1.1 or 1
    X = lambda v: M + v / steps * (W - 2 * M)
    Y = lambda v: H - M - v / top * (H - 2 * M)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{M}" y1="{H - M}" x2="{W - M}" y2="{H - M}" stroke="black"/><line x1="{M}" y1="{M}" x2="{M}" y2="{H - M}" stroke="black"/>',
           f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">step</text>',
           f'<text x="18" y="{H / 2}" text-anchor="middle" transform="rotate(-90 18 {H / 2})">Σ hidden-state MSE over 6 layers (thick: held-out; thin: training, 20-step mean)</text>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="14">Layer loss over distillation: (a) HomoDistil vs (b) one-shot</text>']
    for k in range(6):
        out.append(f'<text x="{X(steps * k / 5):.1f}" y="{H - M + 16}" text-anchor="middle">{steps * k // 5}</text>')
        out.append(f'<text x="{M - 6}" y="{Y(top * k / 5) + 4:.1f}" text-anchor="end">{top * k / 5:.3f}</text>')
    for s, colour in (("a", "#c0392b"), ("b", "#2e86c1")):
        # Thin: the training batches' term, a moving mean over 20 steps; thick, with dots: held-out.
        train = [r for r in students[s]["distill"]["train_curve"] if r.get("hidden") is not None]
        smooth = [(r["step"], statistics.fmean(t["hidden"] for t in train[max(0, i - 19):i + 1])) for i, r in enumerate(train)]
        pts = " ".join(f"{X(step):.1f},{Y(v):.1f}" for step, v in smooth[::5])
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1" stroke-opacity="0.5"/>')
        pts = " ".join(f"{X(r['step']):.1f},{Y(r['hidden']):.1f}" for r in series[s])
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(f'<circle cx="{X(r["step"]):.1f}" cy="{Y(r["hidden"]):.1f}" r="3" fill="{colour}"/>' for r in series[s])
        last = series[s][-1]
        out.append(f'<text x="{X(last["step"]) - 4:.1f}" y="{Y(last["hidden"]) - 8:.1f}" text-anchor="end" fill="{colour}">{NAMES[s][:3]}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def cell_hours(directory):
    """Σ of the cells' own times: each cell's `seconds`, plus a distillation's training time (a
    distillation cell that found its checkpoint finished only exported it)."""
    total = 0.0
    for path in glob.glob(os.path.join(directory, "*", "*.json")) + glob.glob(os.path.join(directory, "*.json")):
        cell = load(path) or {}
        total += cell.get("seconds", 0)
        total += cell.get("train_seconds", 0) if os.path.basename(path) == "distill.json" else 0
        if "reused_from" in cell.get("finetune", {}) and "quick" not in directory:
            total += cell["finetune"]["train_seconds"]
    return total / 3600


def hotter_lines(directory, students, latency):
    """The fine-tuning diagnostic: (a) and the teacher fine-tuned with lr 1e-4 for 3 epochs, and the
    target checked against the teacher's better recipe."""
    runs = {s: [r for r in (load(p) for p in sorted(glob.glob(os.path.join(directory, f"minilm-half-{s}", "rt_polarity-hotter-split*-seed*.json")))) if r]
            for s in ("a", "g", "b", "f")}
    if not runs["a"]:
        return []
    lines = ["**Diagnostic: the fine-tuning recipe.** The same students fine-tuned hotter (lr 1e-4 and 3 epochs instead of "
             "5e-5 and 2; same split, seeds, batch and sequence length):", "",
             "| model | rt_polarity dev accuracy %, table's recipe | hotter recipe |", "|---|---|---|"]
    for s in ("g", "a", "b", "f"):
        lines.append(f"| {NAMES[s]} | {fmt_accuracy(students[s]['rt'])} | {fmt_accuracy(runs[s]) if runs[s] else 'not run'} |")
    teacher_best, teacher_seeds = max((accuracy(r)[0], accuracy(r)[2]) for r in (students["g"]["rt"], runs["g"]) if r)
    mean, std, n = accuracy(runs["a"])
    drop = 100 * (teacher_best - mean)
    lat = (latency or {}).get("models", {}).get("a")
    lines += ["", f"Target check with the hotter recipe for (a): {drop:.2f} points below the teacher's better recipe "
              f"({100 * teacher_best:.2f} % over {teacher_seeds} seed{'s' if teacher_seeds > 1 else ''}; (a) over {n} seed{'s' if n > 1 else ''}{f', ± {100 * std:.2f}' if n > 1 else ''}) — target ≤ {TARGET_POINTS:.1f}: "
              f"{'met' if drop <= TARGET_POINTS else 'missed'}"
              + (f"; {lat['speedup_1x128']:.2f}× faster at 1 × 128." if lat else "."), ""]
    hotter = {s: dict(students[s], rt=runs[s]) for s in ("a", "b", "f") if runs[s]}
    compared = comparisons(hotter, "a", tuple(s for s in ("b", "f") if s in hotter))
    if compared:
        lines += ["With the hotter recipe, (a) minus each alternative (rt_polarity only; the other figures do not depend on fine-tuning):", ""]
        lines += [line.split(", embedding")[0] for line in compared] + [""]
    return lines


def section():
    full, full_latency = collect(os.path.join(ROOT, "docs/results/evidence"))
    quick, quick_latency = collect(os.path.join(ROOT, "docs/results/evidence-quick"))
    lines = [BEGIN, "", "Generated by `python3 tools/experiment_results.py` from `docs/results/evidence/` (cells of "
             "`tools/experiment.sh`); do not edit by hand.", ""]
    d = full["a"]["distill"]
    if d:
        lines += [f"Teacher: {d['teacher']}. Students' size: {d['size']}; (f) keeps 3 of the 6 layers at full width. "
                  f"Every student: {d['steps']} steps × 16 sequences × 64 tokens ({d['tokens']:,} tokens) on the same corpus, "
                  "learning-rate schedule (peak 2e-4, 10 % warm-up, linear decay) and seed; layer terms + pooled cosine "
                  "(the teacher has no MLM head). Fine-tuning: the recipe of the rt_polarity fine-tuning above "
                  "(2 epochs, batch 32, lr 5e-5, sequences of 64), best dev epoch, on a stratified 10 % dev split.", ""]
    if full_latency:
        lines += [f"Latency: `hd-infer bench`, {full_latency['threads']} threads, median of {full_latency['rounds']} interleaved "
                  f"rounds, CPU {full_latency['cpu']}, OPENBLAS_CORETYPE={full_latency['openblas_coretype']}.", ""]
    lines += table(full, full_latency, "Tier 1: all-MiniLM-L6-v2, one student size") + [""]
    lines += [f"Compute: {cell_hours(os.path.join(ROOT, 'docs/results/evidence')):.1f} hours of cell time (the sum of each cell's "
              "own wall time, each cell on one thread, the teacher's reused fine-tuning included; measured while up to four cells "
              "shared the two cores, so it overstates what the cells need alone; `--jobs 2` halves the wall time).", ""]
    lines += target(full, full_latency) + [""]
    comp = comparisons(full)
    if comp:
        lines += ["Differences, (a) minus each alternative:", ""] + comp + [""]
    lines += hotter_lines(os.path.join(ROOT, "docs/results/evidence"), full, full_latency)
    budget = comparisons(full, "a2", ("a",))
    if budget:
        lines += ["The budget: (a) distilled on twice the tokens (1,000 steps, the same schedule stretched) minus (a):", ""] + budget + [""]
    if svg_accuracy_latency(full, full_latency, os.path.join(ROOT, "docs/results/evidence-accuracy-latency.svg")):
        lines += ["![accuracy against latency](results/evidence-accuracy-latency.svg)", ""]
    if svg_curves(full, os.path.join(ROOT, "docs/results/evidence-layer-loss.svg")):
        lines += ["![held-out layer loss, (a) vs (b)](results/evidence-layer-loss.svg)", ""]
    if quick["a"]["distill"] or quick["b"]["distill"]:
        lines += table(quick, quick_latency, "`--quick` (students a and b, fewer steps, one seed)") + [""]
        lines += comparisons(quick, "a", ("b",)) + [""]
        lines += [f"Compute of `--quick`: {cell_hours(os.path.join(ROOT, 'docs/results/evidence-quick')):.2f} hours of cell time, "
                  "counted the same way (the teacher's fine-tuning reused, not counted).", ""]
    lines.append(END)
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--print", action="store_true")
    args = p.parse_args()
    text = section()
    if args.print:
        print(text)
        return
    replace_section(os.path.join(ROOT, "docs/RESULTS.md"), BEGIN, END, text)


if __name__ == "__main__":
    main()
