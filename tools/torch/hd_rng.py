"""The generators of hd-distill (HDDistill/DataOrder.swift, MLMMasking.swift, over the SplitMix64 and
xoshiro256** of Sources/HDTensor/Random.swift in tools/hd_random.py) in plain Python, draw for draw, so
the torch trainer given the same --seed takes the same sequences and masks the same positions with the
same replacements as the Swift trainer.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hd_random import M64, Xoshiro256, mix  # noqa: E402  (tools/hd_random.py)


def permutation(seed, epoch, count):
    """Epoch `epoch`'s order of `count` sequences: Fisher–Yates driven by Xoshiro256(seed ^ mix(epoch))."""
    rng = Xoshiro256(seed=(seed ^ mix(epoch)) & M64)
    order = list(range(count))
    for i in range(count - 1, 0, -1):
        j = rng.next_int(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class DataOrder:
    """Which training sequence comes next: (epoch, position) is the whole state, as in `DataOrder`."""

    def __init__(self, seed, count, epoch=0, position=0):
        if not (0 < count <= 2**31 - 1) or epoch < 0 or not (0 <= position <= count):
            raise ValueError(f"data order: expected 1…{2**31 - 1} sequences, epoch ≥ 0, position in 0…{count}; "
                             f"found {count}, {epoch}, {position}")
        self.seed, self.count, self.epoch, self.position = seed & M64, count, epoch, position
        self.perm = permutation(self.seed, epoch, count)

    def next(self):
        if self.position == self.count:
            self.epoch += 1
            self.position = 0
            self.perm = permutation(self.seed, self.epoch, self.count)
        index = self.perm[self.position]
        self.position += 1
        return index


F32_RATE = np.float32(0.15)
F32_MASK_P = float(np.float32(0.8))
F32_RANDOM_P = float(np.float32(0.9))


def swift_round(x):
    """Swift's `rounded()`: to nearest, halves away from zero (x ≥ 0 here)."""
    return int(np.floor(np.float64(x) + 0.5))


def mask_count(n):
    """max(1, round(0.15 · n)) with the product formed in float32, as `MLMMasking` does."""
    return max(1, swift_round(np.float32(n) * F32_RATE))


class Masking:
    """BERT's masking as `MLMMasking.mask`: per sequence exactly max(1, round(0.15·n)) of its n non-special
    positions by a partial Fisher–Yates shuffle; each becomes [MASK] (u < 0.8), a random ordinary token
    (u < 0.9, rejection-sampled) or stays."""

    def __init__(self, special, vocab_size):
        self.special_ids = sorted(set(special.values()))
        self.mask_id = special["mask"]
        self.vocab_size = vocab_size
        self.is_special = np.zeros(vocab_size, dtype=bool)
        self.is_special[self.special_ids] = True

    def labels_per_sequence(self, length):
        return mask_count(max(length - 2, 0))

    def mask(self, ids, rng):
        """Masks `ids` [B, L] (int64 numpy, modified in place); returns flat positions and labels."""
        batch, length = ids.shape
        flat = ids.reshape(-1)
        positions, labels = [], []
        for b in range(batch):
            candidates = [t for t in range(b * length, (b + 1) * length) if not self.is_special[flat[t]]]
            if not candidates:
                continue
            n = len(candidates)
            count = min(n, mask_count(n))
            for i in range(count):
                j = i + rng.next_int(n - i)
                candidates[i], candidates[j] = candidates[j], candidates[i]
            chosen = sorted(candidates[:count])
            for t in chosen:
                positions.append(t)
                labels.append(int(flat[t]))
                u = rng.next_unit_float()
                if u < F32_MASK_P:
                    flat[t] = self.mask_id
                elif u < F32_RANDOM_P:
                    while True:
                        token = rng.next_int(self.vocab_size)
                        if not self.is_special[token]:
                            break
                    flat[t] = token
        return np.array(positions, dtype=np.int64), np.array(labels, dtype=np.int64)
