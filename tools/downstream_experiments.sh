#!/usr/bin/env bash
# The downstream-task figures of docs/RESULTS.md (issue 13), by hand (needs .venv-torch for the
# transformers peer and ../shared/data for the tasks and corpora). Each step writes its JSON under
# docs/results/ and is skipped when that JSON exists, so an interrupted run continues where it
# stopped; tools/downstream_results.py then regenerates the tables.
#
#   bash tools/downstream_experiments.sh [finetune|speed|pooled [snli]|task|quant|all]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
data=${HD_SHARED_DATA:-../shared/data}
bin=${HD_BIN:-.build/release}
py=.venv-torch/bin/python
results=docs/results
minilm=.cache/models/minilm
split=.cache/tasks/rt_polarity
work=.cache/experiments
mkdir -p "$results/finetune-minilm-rt" "$work"
[[ -d $minilm ]] || bash tools/fetch-models.sh minilm
# hd-finetune's own split (--dev-fraction 0.1 --split-seed 0), written out so the peer reads the same rows.
[[ -f $split/dev.tsv ]] || python3 tools/task_split.py "$data/tasks/rt_polarity.tsv" --fraction 0.1 --seed 0 --out-dir "$split"
# One thread per run: the accuracy runs go side by side (ours and the peer, one core each); speed is
# measured apart, both tools on the same 2 threads, alternating (speed()).
recipe=(--seq-len 64 --epochs 2 --batch 32 --lr 5e-5 --threads 1)
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}  # this machine sets it; OpenBLAS 0.3.21 does not recognise every recent CPU and falls back to SSE3 (Prescott) kernels

finetune() {
    for seed in 0 1 2; do
        out=$results/finetune-minilm-rt/homodistil-seed$seed.json
        [[ -s $out ]] || "$bin/hd-finetune" "$minilm" --train "$split/train.tsv" --dev "$split/dev.tsv" \
            -o "$work/minilm-rt-seed$seed.ckpt" "${recipe[@]}" --seed "$seed" --json > "$out.tmp" && mv "$out.tmp" "$out"
        out=$results/finetune-minilm-rt/transformers-seed$seed.json
        [[ -s $out ]] || $py tools/finetune_transformers.py "$minilm" --train "$split/train.tsv" --dev "$split/dev.tsv" \
            "${recipe[@]}" --seed "$seed" --json "$out"
    done
}

speed() {
    [[ -s $results/finetune-speed.json ]] || $py tools/bench_finetune_peers.py "$minilm" --train "$split/train.tsv" \
        --dev "$split/dev.tsv" --examples 1280 --seq-len 64 --batch 32 --threads 2 --repeats 3 --hd-finetune "$bin/hd-finetune" \
        --json "$results/finetune-speed.json"
}

# Size and cost of a model as hd-infer counts them (parameters, FLOPs of one 128-token sequence).
size() { "$bin/hd-infer" bench "$1" --batch 1 --seq-len 128 --iterations 3 --threads 2 --json; }

# pooled [corpus-name corpus-files…]: the student for sentence embeddings, distilled on the corpus
# (default: Austen + BBC; "snli": the SNLI training sentences, one per line, the domain of the
# held-out SNLI test sentences it is measured on).
pooled() {
    local name=${1:-} steps=150
    local out=$results/distill-minilm-pooled${name:+-$name}.json stem=$work/minilm-pooled${name:+-$name}
    local corpus=("$data/text/janeausten.txt" "$data/text/bbcnews.txt")
    if [[ $name == snli ]]; then
        steps=300
        corpus=("$work/snli-train-sentences.txt")
        [[ -f ${corpus[0]} ]] || python3 -c 'import csv, sys; csv.field_size_limit(1 << 30); rows = csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"), delimiter="\t"); print("\n".join(dict.fromkeys(s for r in rows for s in (r["premise"], r["hypothesis"]) if s.strip())))' \
            "$data/tasks/snli_train100k.tsv" > "${corpus[0]}"
    fi
    [[ -s $out ]] && return
    # Half the encoder: every head 32 → 16 dimensions and the FFN 1536 → 768; the hidden size stays 384,
    # so the student's embeddings live in the teacher's space and can be compared (and swapped into an
    # index built with the teacher).
    if [[ ! -f $stem.safetensors ]]; then
        "$bin/hd-distill" "$minilm" --corpus "${corpus[@]}" -o "$stem.ckpt" \
            --steps $steps --batch 16 --seq-len 64 --lr 2e-4 --warmup $((steps / 10)) --head-size 16 --ffn 768 \
            --prune-end $((steps * 2 / 3)) --prune-every 10 --eval-every 50 --eval-sequences 256 --threads ${POOLED_THREADS:-1} \
            --log "$stem.jsonl"
        "$bin/hd-export" --shrink "$stem.ckpt" -o "$stem.safetensors"
    fi
    python3 tools/embedding_fidelity.py "$minilm" "$stem.safetensors" --sentences "$data/tasks/snli_test.tsv" \
        --column hypothesis --count 1000 --hd-infer "$bin/hd-infer" --json "$stem-fidelity.json"
    python3 - "$out" "$stem-fidelity.json" <(size "$minilm") <(size "$stem.safetensors") "$stem.jsonl" "${name:-austen+bbc}" <<'PY'
import json, sys
out, fidelity, teacher, student, log, corpus = sys.argv[1:]
t, s = json.load(open(teacher)), json.load(open(student))
evals = [r for r in map(json.loads, open(log)) if r.get("kind") == "eval"]
json.dump({"widths": "head size 16 of 32, FFN 768 of 1536, hidden 384", "corpus": corpus, "fidelity": json.load(open(fidelity)),
           "held_out_pooled_cosine": evals[-1]["pooled_cosine"], "held_out_sequences": evals[-1]["sequences"], "steps": evals[-1]["step"],
           "teacher_parameters": t["params"], "student_parameters": s["params"],
           "teacher_flops": t["flops_per_forward"], "student_flops": s["flops_per_forward"],
           "command": "bash tools/downstream_experiments.sh pooled" + ("" if corpus == "austen+bbc" else " " + corpus)}, open(out, "w"), indent=1)
PY
}

task() {
    out=$results/distill-minilm-task.json
    [[ -s $out ]] && return
    teacher=$work/minilm-rt-seed0.ckpt
    [[ -f $teacher ]] || finetune
    if [[ ! -f $work/minilm-task.safetensors ]]; then
        "$bin/hd-distill" "$teacher" --task "$split/train.tsv" --task-dev "$split/dev.tsv" -o "$work/minilm-task.ckpt" \
            --steps 120 --batch 32 --seq-len 64 --lr 1e-4 --warmup 12 --head-size 16 --ffn 768 --prune-end 80 --prune-every 10 \
            --eval-every 40 --eval-sequences 854 --threads 1 --log "$work/minilm-task.jsonl"
        "$bin/hd-export" --shrink "$work/minilm-task.ckpt" -o "$work/minilm-task.safetensors"
    fi
    python3 - "$out" <("$bin/hd-infer" evaluate "$teacher" --data "$split/dev.tsv" --json) \
        <("$bin/hd-infer" evaluate "$work/minilm-task.safetensors" --data "$split/dev.tsv" --json) \
        <(size "$teacher") <(size "$work/minilm-task.safetensors") <<'PY'
import json, sys
out, te, se, ts, ss = sys.argv[1:]
t, s = json.load(open(ts)), json.load(open(ss))
json.dump({"widths": "head size 16 of 32, FFN 768 of 1536, hidden 384", "teacher": json.load(open(te)), "student": json.load(open(se)),
           "teacher_parameters": t["params"], "student_parameters": s["params"],
           "teacher_flops": t["flops_per_forward"], "student_flops": s["flops_per_forward"],
           "command": "bash tools/downstream_experiments.sh task"}, open(out, "w"), indent=1)
PY
}

# The accuracy cost of the runtime's bf16 and int8 (issue 15) on a real classifier: the fine-tuned
# MiniLM (seed 0) on the rt_polarity dev split at each precision, and how often its label changes.
quant() {
    out=$results/quant-classifier-minilm-rt.json
    [[ -s $out ]] && return
    teacher=$work/minilm-rt-seed0.ckpt
    [[ -f $teacher ]] || finetune
    for precision in fp32 bf16 int8; do
        "$bin/hd-infer" evaluate "$teacher" --data "$split/dev.tsv" --precision "$precision" --threads 2 --json > "$work/evaluate-$precision.json"
        python3 -c 'import csv, sys; csv.field_size_limit(1 << 30); [print(r["text"]) for r in csv.DictReader(open(sys.argv[1], newline=""), delimiter="\t")]' \
            "$split/dev.tsv" | "$bin/hd-infer" classify "$teacher" - --precision "$precision" --threads 2 --json > "$work/classify-$precision.jsonl"
    done
    python3 - "$out" "$work" <<'PY'
import json, sys
out, work = sys.argv[1:]
def labels(p):
    return [json.loads(l).get("label") for l in open(f"{work}/classify-{p}.jsonl") if l.strip()]
reference = labels("fp32")
result = {"model": "all-MiniLM-L6-v2 fine-tuned on rt_polarity (hd-finetune, seed 0)", "command": "bash tools/downstream_experiments.sh quant"}
for p in ("fp32", "bf16", "int8"):
    e = json.load(open(f"{work}/evaluate-{p}.json"))
    mine = labels(p)
    result[p] = {"accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "examples": e["examples"],
                 "label_agreement_with_fp32": sum(a == b for a, b in zip(mine, reference)) / len(reference)}
json.dump(result, open(out, "w"), indent=1)
PY
}

case ${1:-all} in
    finetune) finetune ;;
    speed) speed ;;
    pooled) pooled "${2:-}" ;;
    task) task ;;
    quant) quant ;;
    all) finetune; pooled; pooled snli; task; quant; speed ;;
    *) echo "usage: $0 [finetune|speed|pooled|task|quant|all]" >&2; exit 64 ;;
esac
python3 tools/downstream_results.py
