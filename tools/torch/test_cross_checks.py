"""Cross-checks of the torch trainer against `hd-distill` (issue 18), on a CPU with gloo on loopback.

    swift build -c release && bash tools/fetch-models.sh splade-tiny
    .venv-torch/bin/python -m unittest -v tools/torch/test_cross_checks.py

Not part of CI (`bash .ci/run` runs `swift test` only; PyPI's torch is a 3 GB build). Needs the release
binaries in .build/release, .venv-torch (torch, numpy) and .cache/models/splade-tiny. Each check runs both
trainers on the same token file with the same flags and compares their JSON Lines logs record by record
(every logged float term, relative error |a − b| / max(|a|, |b|)) and their checkpoints (masks, generator
state, data position):

- one step: steps 1 and 2 of a one-shot pruning run (step 1 at full width, masks to the target after it;
  step 2 with every term nonzero) agree ≤ 1e-5, with the same masks and kept counts — tiny fixture, splade-tiny;
- 20 steps of cubic pruning agree ≤ 1e-4 in every train and eval record, final masks equal;
- 2 processes (torchrun, gloo) equal 1 process with the same global batch ≤ 1e-5, ranks checked identical;
- a checkpoint from either trainer resumes in the other and the run continues as the uninterrupted one ≤ 1e-4;
- a 2-process run pruning splade-tiny to half width gives a student.ckpt that `hd-export --shrink` verifies;
- the recipe's other flags (accumulation, warm-up, importance kinds, temperature and loss weights, no layer
  terms, no clipping, a preset target, --mlm-only) agree ≤ 1e-4 over 8–10 steps on the tiny model.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from hd_files import read_safetensors  # noqa: E402

BIN = os.path.join(ROOT, ".build", "release")
PYTHON = sys.executable
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")
SCRIPT = os.path.join(HERE, "hd_distill.py")
SPLADE = os.path.join(ROOT, ".cache", "models", "splade-tiny")
ENV = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def swift(teacher, tokens, out, log, flags, resume=None):
    cmd = [os.path.join(BIN, "hd-distill"), teacher, "--corpus", tokens, "-o", out, "--log", log] + flags
    return run(cmd + (["--resume", resume] if resume else []))


def torch_run(teacher, tokens, out, log, flags, nproc=1, resume=None, extra=()):
    args = [teacher, "--corpus", tokens, "-o", out, "--log", log] + flags + list(extra) + (["--resume", resume] if resume else [])
    if nproc == 1:
        return run([PYTHON, SCRIPT] + args)
    # `--` ends torchrun's own options: its parser would take the script's --log for an abbreviation of its --log-dir.
    return run([TORCHRUN, "--standalone", "--nproc_per_node", str(nproc), "--", SCRIPT] + args + ["--check-ranks"])


def records(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r["kind"] != "summary"]


def rel(a, b):
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


class CrossChecks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("hd-distill", "hd-convert", "hd-export"):
            if not os.path.exists(os.path.join(BIN, tool)):
                raise unittest.SkipTest(f"{BIN}/{tool} missing: run swift build -c release first")
        if not os.path.exists(os.path.join(SPLADE, "model.safetensors")):
            raise AssertionError(f"{SPLADE} missing: run bash tools/fetch-models.sh splade-tiny")
        cls.dir = tempfile.mkdtemp(prefix="hd-torch-checks.")
        cls.models = {}
        for name, source, corpus, seq_len, every in [
                ("tiny", os.path.join(ROOT, "fixtures", "tiny-bert", "model.safetensors"),
                 os.path.join(ROOT, "fixtures", "corpus", "tiny.txt"), 32, 5),
                ("splade", SPLADE, os.path.join(ROOT, "data", "demo", "northanger-abbey.txt"), 64, 20)]:
            teacher, tokens = cls.path(name + ".safetensors"), cls.path(name + ".tokens")
            run([os.path.join(BIN, "hd-convert"), source, "-o", teacher])
            run([os.path.join(BIN, "hd-distill"), teacher, "--corpus", corpus, "--tokenize-only", "-o", tokens,
                 "--seq-len", str(seq_len), "--held-out-every", str(every)])
            cls.models[name] = (teacher, tokens, seq_len)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    # Half of each width: tiny 32/64/8 → 16/32/4; splade-tiny 128/512/64 → 64/256/32.
    TARGET = {"tiny": ["--hidden", "16", "--ffn", "32", "--head-size", "4"],
              "splade": ["--hidden", "64", "--ffn", "256", "--head-size", "32"]}

    def flags(self, model, steps, batch, extra):
        seq_len = self.models[model][2]
        return ["--seq-len", str(seq_len), "--steps", str(steps), "--batch", str(batch), "--threads", "1",
                "--eval-sequences", "16", "--seed", "3"] + self.TARGET[model] + extra

    def assert_logs_agree(self, a, b, tol, steps=None):
        """Every record of `a` (train and eval) has its twin in `b`; floats within `tol`, integers equal."""
        ra, rb = records(a), records(b)
        if steps is not None:
            ra = [r for r in ra if r["step"] in steps]
        twins = {(r["kind"], r["step"]): r for r in rb}
        self.assertTrue(ra, f"no records in {a}")
        worst = (0.0, "")
        for r in ra:
            t = twins.get((r["kind"], r["step"]))
            self.assertIsNotNone(t, f"{b} has no {r['kind']} record of step {r['step']}")
            for k, v in r.items():
                if k.endswith("seconds") or k == "kind":
                    continue
                self.assertIn(k, t, f"{b} step {r['step']}: no {k}")
                if isinstance(v, float):
                    e = rel(v, t[k])
                    worst = max(worst, (e, f"{r['kind']} {r['step']} {k}"))
                    self.assertLessEqual(e, tol, f"{r['kind']} step {r['step']} {k}: {v} vs {t[k]} (relative {e:.2e})")
                else:
                    self.assertEqual(v, t[k], f"{r['kind']} step {r['step']} {k}")
        print(f"\n  {os.path.basename(a)} vs {os.path.basename(b)}: {len(ra)} records, worst relative {worst[0]:.2e} ({worst[1]})",
              file=sys.stderr)
        return worst[0]

    def assert_same_state(self, a, b, rng=True):
        ta, ma = read_safetensors(a)
        tb, mb = read_safetensors(b)
        masks = sorted(k for k in ta if k.startswith("hd.mask."))
        self.assertEqual(masks, sorted(k for k in tb if k.startswith("hd.mask.")))
        for k in masks:
            self.assertTrue(np.array_equal(ta[k], tb[k]), f"{k} differs: kept {ta[k].sum()} vs {tb[k].sum()}")
        self.assertEqual(ma["hd.step"], mb["hd.step"])
        self.assertEqual(json.loads(ma["hd.data"]), json.loads(mb["hd.data"]))
        self.assertEqual(json.loads(ma["hd.recipe"]), json.loads(mb["hd.recipe"]))
        if rng:
            self.assertEqual(ma["hd.rng"], mb["hd.rng"], "the masking generators drew differently")

    # ------------------------------------------------------------------------------------------- checks

    def one_step(self, model):
        teacher, tokens, _ = self.models[model]
        flags = self.flags(model, 2, 8, ["--schedule", "one-shot", "--eval-every", "0"])
        s, p = self.path(model + "-1s"), self.path(model + "-1p")
        swift(teacher, tokens, s + ".ckpt", s + ".jsonl", flags)
        torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags)
        self.assert_logs_agree(s + ".jsonl", p + ".jsonl", 1e-5, steps={1, 2})
        step2 = [r for r in records(s + ".jsonl") if r["kind"] == "train" and r["step"] == 2][0]
        for term in ("mlm", "kl", "hidden", "attention", "embedding"):
            self.assertGreater(step2[term], 0, f"step 2's {term} should be nonzero to be a check")
        self.assert_same_state(s + ".ckpt", p + ".ckpt")

    def test_1_one_step_tiny(self):
        self.one_step("tiny")

    def test_1_one_step_splade(self):
        self.one_step("splade")

    def twenty_steps(self, model):
        teacher, tokens, _ = self.models[model]
        flags = self.flags(model, 20, 8, ["--prune-start", "2", "--prune-end", "14", "--prune-every", "2", "--eval-every", "10"])
        s, p = self.path(model + "-20s"), self.path(model + "-20p")
        swift(teacher, tokens, s + ".ckpt", s + ".jsonl", flags)
        torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags)
        self.assert_logs_agree(s + ".jsonl", p + ".jsonl", 1e-4)
        self.assert_same_state(s + ".ckpt", p + ".ckpt")

    def test_2_twenty_steps_tiny(self):
        self.twenty_steps("tiny")

    def test_2_twenty_steps_splade(self):
        self.twenty_steps("splade")

    def two_processes(self, model):
        teacher, tokens, _ = self.models[model]
        flags = self.flags(model, 6, 8, ["--prune-start", "0", "--prune-end", "4", "--prune-every", "2", "--eval-every", "3"])
        one, two = self.path(model + "-ddp1"), self.path(model + "-ddp2")
        torch_run(teacher, tokens, one + ".ckpt", one + ".jsonl", flags, nproc=1)
        torch_run(teacher, tokens, two + ".ckpt", two + ".jsonl", flags, nproc=2)
        self.assert_logs_agree(one + ".jsonl", two + ".jsonl", 1e-5)
        self.assert_same_state(one + ".ckpt", two + ".ckpt")

    def test_3_two_processes_tiny(self):
        self.two_processes("tiny")

    def test_3_two_processes_splade(self):
        self.two_processes("splade")

    def test_4_swift_checkpoint_resumes_in_torch(self):
        """hd-distill is paused the moment its step-6 checkpoint appears (a 12-step run saving every 6), the
        file copied, the run finished: the torch trainer continues the copy and must match steps 7–12."""
        teacher, tokens, _ = self.models["splade"]
        flags = self.flags("splade", 12, 8, ["--prune-start", "2", "--prune-end", "10", "--prune-every", "2",
                                             "--eval-every", "6", "--save-every", "6"])
        s, p = self.path("resume-s"), self.path("resume-p")
        cmd = [os.path.join(BIN, "hd-distill"), teacher, "--corpus", tokens, "-o", s + ".ckpt", "--log", s + ".jsonl"] + flags
        proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while not os.path.exists(s + ".ckpt") and proc.poll() is None:
                time.sleep(0.001)
            proc.send_signal(signal.SIGSTOP)
            shutil.copy(s + ".ckpt", s + "-6.ckpt")
            proc.send_signal(signal.SIGCONT)
        finally:
            status, err = proc.wait(), proc.stderr.read().decode()
            proc.stderr.close()
            self.assertEqual(status, 0, err[-2000:])
        self.assertEqual(read_safetensors(s + "-6.ckpt")[1]["hd.step"], "6", "the copy is not the step-6 checkpoint")
        torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags, resume=s + "-6.ckpt")
        self.assert_logs_agree(p + ".jsonl", s + ".jsonl", 1e-4)
        self.assertEqual(min(r["step"] for r in records(p + ".jsonl")), 7)
        self.assert_same_state(s + ".ckpt", p + ".ckpt")

    def test_4_torch_checkpoint_resumes_in_swift(self):
        teacher, tokens, _ = self.models["splade"]
        flags = self.flags("splade", 12, 8, ["--prune-start", "2", "--prune-end", "10", "--prune-every", "2", "--eval-every", "6"])
        p, half, s = self.path("back-p"), self.path("back-half"), self.path("back-s")
        torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags)
        torch_run(teacher, tokens, half + ".ckpt", half + ".jsonl", flags, extra=["--stop-after", "6"])
        self.assertEqual(read_safetensors(half + ".ckpt")[1]["hd.step"], "6")
        swift(teacher, tokens, s + ".ckpt", s + ".jsonl", flags, resume=half + ".ckpt")
        self.assertEqual(min(r["step"] for r in records(s + ".jsonl")), 7)
        self.assert_logs_agree(s + ".jsonl", p + ".jsonl", 1e-4)
        self.assert_same_state(s + ".ckpt", p + ".ckpt")

    VARIANTS = {
        "accumulate 2, warm-up 3": ["--accumulate", "2", "--warmup", "3"],
        "sensitivity importance": ["--importance", "sensitivity"],
        "magnitude importance": ["--importance", "magnitude"],
        "temperature 2, alpha-kl 0.5, alpha-hidden 0.3": ["--temperature", "2", "--alpha-kl", "0.5", "--alpha-hidden", "0.3"],
        "no layer terms": ["--no-distill-layers"],
        "no clipping, lr 1e-3": ["--clip-norm", "0", "--lr", "1e-3", "--weight-decay", "0.1"],
        "preset target, width multiple 4": ["--target", "homobert-small", "--width-multiple", "4"],
    }

    def test_6_flag_variants_tiny(self):
        """The other flags of the recipe, 10 steps each on the tiny model, ≤ 1e-4 in every record."""
        teacher, tokens, _ = self.models["tiny"]
        for i, (name, extra) in enumerate(self.VARIANTS.items()):
            with self.subTest(name):
                flags = self.flags("tiny", 10, 4, ["--prune-start", "1", "--prune-end", "7", "--prune-every", "2", "--eval-every", "5"])
                if "--target" in extra:
                    for flag in ("--hidden", "--ffn", "--head-size"):
                        j = flags.index(flag)
                        del flags[j:j + 2]
                s, p = self.path(f"v{i}s"), self.path(f"v{i}p")
                swift(teacher, tokens, s + ".ckpt", s + ".jsonl", flags + extra)
                torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags + extra)
                self.assert_logs_agree(s + ".jsonl", p + ".jsonl", 1e-4)
                self.assert_same_state(s + ".ckpt", p + ".ckpt")

    def test_6_mlm_only_tiny(self):
        teacher, tokens, _ = self.models["tiny"]
        flags = ["--seq-len", "32", "--steps", "8", "--batch", "4", "--threads", "1", "--seed", "5", "--mlm-only", "--eval-every", "4"]
        s, p = self.path("mlm-s"), self.path("mlm-p")
        swift(teacher, tokens, s + ".ckpt", s + ".jsonl", flags)
        torch_run(teacher, tokens, p + ".ckpt", p + ".jsonl", flags)
        self.assert_logs_agree(s + ".jsonl", p + ".jsonl", 1e-4)
        self.assert_same_state(s + ".ckpt", p + ".ckpt")

    def test_5_two_process_student_exports(self):
        """Done-when of issue 18: 2 CPU processes prune splade-tiny to half width; hd-export --shrink verifies it."""
        teacher, tokens, _ = self.models["splade"]
        flags = self.flags("splade", 10, 8, ["--prune-start", "1", "--prune-end", "7", "--prune-every", "2", "--eval-every", "0"])
        out = self.path("half")
        torch_run(teacher, tokens, out + ".ckpt", out + ".jsonl", flags, nproc=2)
        r = run([os.path.join(BIN, "hd-export"), "--shrink", out + ".ckpt", "-o", out + ".safetensors"])
        self.assertIn("hidden 64, 2 heads × 32, FFN 256", r.stdout + r.stderr)
        self.assertIn("checked:", r.stdout + r.stderr)
        print("\n  " + (r.stdout + r.stderr).strip().replace("\n", "\n  "), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
