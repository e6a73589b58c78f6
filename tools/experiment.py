#!/usr/bin/env python3
"""The evidence experiment (issue 14): does a student pruned by HomoDistil keep its teacher's task
accuracy better than the alternatives, at the same size and training budget?

    python3 tools/experiment.py [--quick] [--jobs N] [--seeds 0,1,2] [--split-seed 0] [--only CELL…] [--list]

The work is split into cells: distil one student, fine-tune it on rt_polarity with one seed, measure
its embedding fidelity, its zero-shot SNLI ranking, and (last, alone on the machine) the latency of
every model. A cell writes its JSON under docs/results/evidence/ (docs/results/evidence-quick/ with
--quick) atomically when it finishes; a rerun skips finished cells and continues an interrupted
distillation from its checkpoint, so the whole table may take several invocations. `--jobs 2` runs
two cells side by side, one thread each (training cells always run on one thread, so a figure does
not depend on how many ran at once); the latency cell runs alone on 2 threads. The tables and plots
are then regenerated (tools/experiment_results.py) from whatever cells exist.

Students (one size, --hidden 192 --ffn 768, heads kept at 12 × 32; the same corpus, token budget,
learning-rate schedule and seed for each):
  a  HomoDistil: cubic schedule, PLATON importance     b  one-shot pruning to the size, then distillation
  e  the same shape from random initialisation          f  layer dropping: teacher layers 1,3,5, full width
  g  the teacher itself

Needs ../shared/data (corpus and tasks; HD_SHARED_DATA overrides), the release build, and the teacher
(fetched with tools/fetch-models.sh minilm). Standard library only.
"""
import argparse
import csv
import json
import os
import shlex
import statistics
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("HD_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
BIN = os.environ.get("HD_BIN", os.path.join(ROOT, ".build", "release"))
csv.field_size_limit(sys.maxsize)

TEACHER = {"name": "minilm", "path": ".cache/models/minilm", "title": "all-MiniLM-L6-v2 (6 × 384, FFN 1536, 12 heads)"}
SIZE = {"name": "half", "flags": ["--hidden", "192", "--ffn", "768"],
        "title": "hidden 192 of 384, FFN 768 of 1536, heads 12 × 32 kept"}
STUDENTS = {
    "a": ("HomoDistil (cubic, PLATON)", ["--schedule", "cubic", "--importance", "platon"] + SIZE["flags"]),
    "b": ("one-shot pruning, then distillation", ["--schedule", "one-shot", "--importance", "platon"] + SIZE["flags"]),
    "e": ("same shape, random init, distilled", ["--init", "random", "--schedule", "one-shot"] + SIZE["flags"]),
    "f": ("layer dropping (layers 1, 3, 5), distilled", ["--keep-layers", "1,3,5"]),
    # Beyond the table: (a) with twice the tokens, to see how the gap to the teacher moves with the
    # budget (the table's budget is half a million tokens; the paper's is billions).
    "a2": ("HomoDistil (cubic, PLATON), 2× the tokens", ["--schedule", "cubic", "--importance", "platon"] + SIZE["flags"]),
}
STEPS_FACTOR = {"a2": 2}
# The distillation recipe every student shares; --quick shortens it.
RECIPE = {"steps": 500, "batch": 16, "seq_len": 64, "lr": "2e-4", "warmup": 50, "eval_every": 100, "eval_sequences": 256}
QUICK_STEPS = 150
# The fine-tuning recipe of docs/results/finetune-minilm-rt (the teacher's figures there are reused).
FINETUNE = ["--seq-len", "64", "--epochs", "2", "--batch", "32", "--lr", "5e-5", "--threads", "1"]
# A diagnostic beside the table: is (a)'s gap the teacher's fine-tuning recipe, too gentle for a
# student? (a) again with twice the peak learning rate and a third epoch.
FINETUNE_HOTTER = ["--seq-len", "64", "--epochs", "3", "--batch", "32", "--lr", "1e-4", "--threads", "1"]
FIDELITY_SENTENCES = 1000
CORPUS_IMDB_REVIEWS, CORPUS_SNLI_SENTENCES = 6000, 60000


def run(args, **kw):
    """Runs a command with OpenBLAS's core type set as this machine and CI set it."""
    env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "Haswell"))
    return subprocess.run(args, cwd=ROOT, env=env, check=True, **kw)


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


def pruned(checkpoint):
    """Whether a student.ckpt has masks (a layer-dropping run without pruning has none)."""
    return "hd.mask.hidden" in safetensors_header(checkpoint)[0]


def checkpoint_step(checkpoint):
    header, _ = safetensors_header(checkpoint)
    return int(header["__metadata__"]["hd.step"])


class Experiment:
    def __init__(self, args):
        self.quick = args.quick
        self.seeds = [int(s) for s in args.seeds.split(",")]
        self.split_seed = args.split_seed
        self.steps = QUICK_STEPS if args.quick else RECIPE["steps"]
        self.students = ["a", "b"] if args.quick else list(STUDENTS)
        self.results = os.path.join(ROOT, "docs", "results", "evidence-quick" if args.quick else "evidence")
        self.work = os.path.join(ROOT, ".cache", "evidence-quick" if args.quick else "evidence")
        self.teacher = os.path.join(ROOT, TEACHER["path"])
        self.corpus = os.path.join(ROOT, ".cache", "evidence", "corpus.txt")
        self.split = os.path.join(ROOT, ".cache", "tasks", f"rt_polarity-split{self.split_seed}")
        self.lock = threading.Lock()
        self.running = set()
        self.failed = []

    # Paths -----------------------------------------------------------------------------------------
    def student_dir(self, s):
        return os.path.join(self.work, TEACHER["name"], SIZE["name"], s)

    def result(self, s, name):
        return os.path.join(self.results, f"{TEACHER['name']}-{SIZE['name']}-{s}", name)

    def model(self, s):
        return self.teacher if s == "g" else os.path.join(self.student_dir(s), "student.safetensors")

    # Inputs ----------------------------------------------------------------------------------------
    def prepare(self):
        if not os.path.isdir(self.teacher):
            run(["bash", "tools/fetch-models.sh", TEACHER["name"]])
        if not os.path.exists(self.corpus):
            # Unlabelled text from the tasks' domains, none of it evaluated on: the first 6,000 IMDB
            # reviews (rt_polarity is another movie-review set) and the first 60,000 distinct SNLI
            # *training* sentences (fidelity and the zero-shot check use SNLI's test split).
            with open(os.path.join(DATA, "text", "imdb25k_reviews.txt"), encoding="utf-8") as f:
                reviews = [line.strip() for _, line in zip(range(CORPUS_IMDB_REVIEWS), f)]
            with open(os.path.join(DATA, "tasks", "snli_train100k.tsv"), encoding="utf-8", newline="") as f:
                rows = csv.DictReader(f, delimiter="\t")
                sentences = list(dict.fromkeys(s for r in rows for s in (r["premise"], r["hypothesis"]) if s.strip()))
            os.makedirs(os.path.dirname(self.corpus), exist_ok=True)
            with open(self.corpus + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(reviews + sentences[:CORPUS_SNLI_SENTENCES]) + "\n")
            os.replace(self.corpus + ".tmp", self.corpus)
        if not os.path.exists(os.path.join(self.split, "dev.tsv")):
            run([sys.executable, "tools/task_split.py", os.path.join(DATA, "tasks", "rt_polarity.tsv"), "--fraction", "0.1",
                 "--seed", str(self.split_seed), "--out-dir", self.split])

    # Cells -----------------------------------------------------------------------------------------
    def cells(self):
        """(name, output JSON, dependencies, function) in the order they should run."""
        out = []
        for s in self.students:
            out.append((f"distill/{s}", self.result(s, "distill.json"), [], lambda s=s: self.distill(s)))
        for s in self.students + ["g"]:
            deps = [] if s == "g" else [f"distill/{s}"]
            out.append((f"zero-shot/{s}", self.result(s, "snli-zero-shot.json"), deps, lambda s=s: self.zero_shot(s)))
            if s != "g":
                out.append((f"fidelity/{s}", self.result(s, "fidelity.json"), deps, lambda s=s: self.fidelity(s)))
        for seed in self.seeds:
            for s in self.students + ["g"]:
                deps = [] if s == "g" else [f"distill/{s}"]
                out.append((f"rt-polarity/{s}/seed{seed}", self.result(s, f"rt_polarity-split{self.split_seed}-seed{seed}.json"), deps,
                            lambda s=s, seed=seed: self.finetune(s, seed)))
        if "a" in self.students and not self.quick:
            # (a) and (b) with every seed; the teacher (does it gain too?) and (f) with the first.
            for s, seeds in (("a", self.seeds), ("b", self.seeds), ("g", self.seeds[:1]), ("f", self.seeds[:1])):
                for seed in seeds:
                    out.append((f"rt-polarity-hotter/{s}/seed{seed}", self.result(s, f"rt_polarity-hotter-split{self.split_seed}-seed{seed}.json"),
                                [] if s == "g" else [f"distill/{s}"], lambda s=s, seed=seed: self.finetune(s, seed, FINETUNE_HOTTER, "hotter-")))
        # Run alone on the machine (it waits for this invocation's other cells); it needs only the models.
        out.append(("latency", os.path.join(self.results, f"{TEACHER['name']}-{SIZE['name']}-latency.json"),
                    [f"distill/{s}" for s in self.timed()], self.latency))
        return out

    def distill(self, s):
        d = self.student_dir(s)
        os.makedirs(d, exist_ok=True)
        ckpt, log = os.path.join(d, "student.ckpt"), os.path.join(d, "distill.jsonl")
        steps = self.steps * STEPS_FACTOR.get(s, 1)
        command = [os.path.join(BIN, "hd-distill"), self.teacher, "--corpus", self.corpus, "-o", ckpt,
                   "--steps", str(steps), "--batch", str(RECIPE["batch"]), "--seq-len", str(RECIPE["seq_len"]),
                   "--lr", RECIPE["lr"], "--warmup", str(steps // 10), "--prune-every", "10",
                   "--eval-every", str(min(RECIPE["eval_every"], steps)), "--eval-sequences", str(RECIPE["eval_sequences"]),
                   "--save-every", "50", "--seed", "0", "--threads", "1", "--log", log] + STUDENTS[s][1]
        done = os.path.exists(ckpt) and checkpoint_step(ckpt) == steps
        if not done:
            resume = ["--resume", ckpt] if os.path.exists(ckpt) and os.path.exists(log) else []
            if not resume and os.path.exists(log):
                os.remove(log)
            with open(os.path.join(d, "distill.stderr"), "a") as err:
                run(command + resume, stderr=err)
        export = os.path.join(d, "student.safetensors")
        if not pruned(ckpt):  # nothing pruned (layer dropping): the checkpoint's weights as they are
            run([os.path.join(BIN, "hd-convert"), ckpt, "-o", export], stdout=subprocess.DEVNULL)
        else:
            run([os.path.join(BIN, "hd-export"), "--shrink", ckpt, "-o", export], stdout=subprocess.DEVNULL)
        records = [json.loads(line) for line in open(log) if line.strip()]
        evals = [r for r in records if r.get("kind") == "eval"]
        train = [r for r in records if r.get("kind") == "train"]
        summary = [r for r in records if r.get("kind") == "summary"]
        size = self.size(export)
        return {"student": s, "title": STUDENTS[s][0], "teacher": TEACHER["title"], "size": SIZE["title"] if s != "f" else "3 of 6 layers, full width",
                "steps": steps, "tokens": steps * RECIPE["batch"] * RECIPE["seq_len"],
                "held_out": evals[-1], "curve": evals,
                "train_curve": [{k: r.get(k) for k in ("step", "loss", "hidden", "attention", "embedding", "pooled")} for r in train],
                "train_seconds": sum(r["step_seconds"] for r in train), "throughput": summary[-1] if summary else None,
                "parameters": size["params"], "flops_per_128_token_sequence": size["flops_per_forward"],
                "command": shlex.join(self.relative(command))}

    def size(self, model):
        out = run([os.path.join(BIN, "hd-infer"), "bench", model, "--batch", "1", "--seq-len", "128", "--iterations", "1",
                   "--threads", "1", "--json"], capture_output=True, text=True).stdout
        return json.loads(out)

    def compare(self, s, quality):
        """`hd-infer compare` of the teacher and student `s` on one thread (the timing it also does is
        not used: latency is the latency cell's), as JSON."""
        command = [os.path.join(BIN, "hd-infer"), "compare", self.teacher, self.model(s), "--iterations", "1", "--warmup", "0",
                   "--threads", "1", "--json"] + quality
        return json.loads(run(command, capture_output=True, text=True).stdout), shlex.join(self.relative(command))

    def fidelity(self, s):
        """Cosine between the student's and the teacher's mean-pooled embeddings of held-out sentences
        (SNLI test hypotheses: not in the corpus), over the teacher dimensions the student kept (a
        student pruned in its hidden width lives in that subspace; its pooled-cosine loss was taken
        there too)."""
        path = os.path.join(ROOT, ".cache", "evidence", "fidelity-sentences.txt")
        if not os.path.exists(path):
            with open(os.path.join(DATA, "tasks", "snli_test.tsv"), encoding="utf-8", newline="") as f:
                values = [r["hypothesis"] for r in csv.DictReader(f, delimiter="\t")]
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(list(dict.fromkeys(v for v in values if v.strip()))[:FIDELITY_SENTENCES]) + "\n")
            os.replace(path + ".tmp", path)
        result, command = self.compare(s, ["--sentences", path])
        c = result["sentences"]
        return {"student": s, "sentences": c["sentences"], "source": "snli_test.tsv hypotheses (distinct, file order)",
                "dimensions": c["compared_dims"], "mean_cosine": c["mean"], "std_cosine": c["std"], "min_cosine": c["min"],
                "command": command}

    def zero_shot(self, s):
        """SNLI test pairs, entailment against contradiction ranked by cos(premise, hypothesis): each
        model's own ROC AUC, no fine-tuning (the teacher's own row: it beside itself)."""
        result, command = self.compare(s, ["--pairs", os.path.join(DATA, "tasks", "snli_test.tsv")])
        p = result["pairs"]
        return {"student": s, "pairs": p["entailment"] + p["contradiction"], "positives": p["entailment"], "source": "snli_test.tsv",
                "roc_auc": p["student"], "teacher_roc_auc": p["teacher"], "command": command}

    def finetune(self, s, seed, recipe=FINETUNE, tag=""):
        reused = os.path.join(ROOT, "docs", "results", "finetune-minilm-rt", f"homodistil-seed{seed}.json")
        command = [os.path.join(BIN, "hd-finetune"), self.model(s), "--train", os.path.join(self.split, "train.tsv"),
                   "--dev", os.path.join(self.split, "dev.tsv"), "-o", "<checkpoint>"] + recipe + ["--seed", str(seed), "--json"]
        if s == "g" and self.split_seed == 0 and recipe == FINETUNE and os.path.exists(reused):
            # The same command on the same split, run for docs/results/finetune-minilm-rt: not run twice.
            result = read_json(reused)
            result["reused_from"] = os.path.relpath(reused, ROOT)
            command[command.index("<checkpoint>")] = f".cache/experiments/minilm-rt-seed{seed}.ckpt"
        else:
            out = os.path.join(self.work, "finetuned", f"{s}-{tag}split{self.split_seed}-seed{seed}.safetensors")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            command[command.index("<checkpoint>")] = out
            result = json.loads(run(command, capture_output=True, text=True).stdout)
        best = result["epochs"][result["best_epoch"] - 1]
        return {"student": s, "seed": seed, "split_seed": self.split_seed, "accuracy": best["accuracy"], "macro_f1": best["macro_f1"],
                "finetune": result, "command": shlex.join(self.relative(command))}

    def latency(self):
        """p50 latency of every model at 1 × 128 and 8 × 128 on 2 threads, the models interleaved
        round by round so machine noise falls on all of them; the median over rounds."""
        models = ["g"] + self.timed()
        shapes, rounds = [(1, 128, 30), (8, 128, 6)], 5
        samples = {(m, b): [] for m in models for b, _, _ in shapes}
        for _ in range(rounds):
            for b, L, iterations in shapes:
                for m in models:
                    out = run([os.path.join(BIN, "hd-infer"), "bench", self.model(m), "--batch", str(b), "--seq-len", str(L),
                               "--iterations", str(iterations), "--threads", "2", "--json"], capture_output=True, text=True).stdout
                    samples[(m, b)].append(json.loads(out)["latency_ms"]["p50"])
        result = {"threads": 2, "rounds": rounds, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "Haswell"),
                  "cpu": cpu_name(), "models": {}}
        for m in models:
            size = self.size(self.model(m))
            entry = {"parameters": size["params"], "flops_per_128_token_sequence": size["flops_per_forward"]}
            for b, L, _ in shapes:
                p50 = statistics.median(samples[(m, b)])
                teacher = statistics.median(samples[("g", b)])
                entry[f"p50_ms_{b}x{L}"] = p50
                entry[f"rounds_ms_{b}x{L}"] = samples[(m, b)]
                entry[f"speedup_{b}x{L}"] = teacher / p50
            result["models"][m] = entry
        return result

    def timed(self):
        """The students whose latency is measured: one per shape (a2 has a's)."""
        return [s for s in self.students if s not in STEPS_FACTOR]

    def relative(self, command):
        return [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(ROOT) else a for a in command]

    # Scheduling ------------------------------------------------------------------------------------
    def execute(self, jobs, only):
        self.prepare()
        cells = [c for c in self.cells() if not only or any(c[0] == o or c[0].startswith(o.rstrip("/") + "/") for o in only)]
        finished = {c[0] for c in self.cells() if os.path.exists(c[1])}
        pending = [c for c in cells if c[0] not in finished]
        print(f"experiment: {len(cells)} cells, {len(cells) - len(pending)} finished, {len(pending)} to run", file=sys.stderr)

        def ready(cell):
            if cell[0] == "latency":  # alone on the machine, after everything else it measures
                return not self.running and all(p[0] == "latency" for p in pending)
            return all(d in finished for d in cell[2])

        def worker():
            while True:
                with self.lock:
                    cell = next((c for c in pending if ready(c)), None)
                    if cell is None:
                        if not pending or not self.running:
                            return
                    else:
                        pending.remove(cell)
                        self.running.add(cell[0])
                if cell is None:
                    time.sleep(2)
                    continue
                started = time.time()
                print(f"experiment: {cell[0]} …", file=sys.stderr)
                try:
                    value = cell[3]()
                    value["seconds"] = time.time() - started
                    write_json(cell[1], value)
                    print(f"experiment: {cell[0]} done in {value['seconds']:.0f} s", file=sys.stderr)
                    with self.lock:
                        finished.add(cell[0])
                except (subprocess.CalledProcessError, RuntimeError, OSError, KeyError, ValueError) as e:
                    detail = getattr(e, "stderr", None)
                    print(f"experiment: {cell[0]} FAILED: {e}\n{detail or ''}", file=sys.stderr)
                    with self.lock:
                        self.failed.append(cell[0])
                        # Cells that need this one cannot run in this invocation.
                        pending[:] = [c for c in pending if cell[0] not in c[2]]
                finally:
                    with self.lock:
                        self.running.discard(cell[0])

        threads = [threading.Thread(target=worker) for _ in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return not self.failed


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help=f"students a and b, {QUICK_STEPS} steps, one seed (results in docs/results/evidence-quick)")
    p.add_argument("--jobs", type=int, default=2, help="cells run side by side (one thread each)")
    p.add_argument("--seeds", default=None, help="fine-tuning seeds (default 0,1,2; --quick: 0)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of rt_polarity's train/dev split (10 %% dev, stratified)")
    p.add_argument("--only", nargs="*", default=[], help="run only these cells, or the cells under these prefixes, such as distill or rt-polarity/a (see --list)")
    p.add_argument("--list", action="store_true", help="list the cells and whether each is finished")
    args = p.parse_args()
    if args.seeds is None:
        args.seeds = "0" if args.quick else "0,1,2"
    experiment = Experiment(args)
    if args.list:
        for name, out, _, _ in experiment.cells():
            print(f"{'done ' if os.path.exists(out) else '     '} {name}  {os.path.relpath(out, ROOT)}")
        return 0
    ok = experiment.execute(max(1, args.jobs), args.only)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "experiment_results.py")], check=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
