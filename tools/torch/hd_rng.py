"""The generators of hd-distill (Sources/HDTensor/Random.swift, HDDistill/DataOrder.swift, MLMMasking.swift)
in plain Python, draw for draw, so the torch trainer given the same --seed takes the same sequences and
masks the same positions with the same replacements as the Swift trainer.

    SplitMix64 (Steele, Lea, Flood 2014) expands seeds and hashes indices; xoshiro256** 1.0 drives data
    order and masking; integers below a bound by Lemire's multiply-and-reject; floats as 24-bit fractions.
"""
import numpy as np

M64 = (1 << 64) - 1


def mix(x):
    """SplitMix64's finaliser: a bijective hash of a 64-bit integer."""
    z = x & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        return mix(self.state)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro256:
    """xoshiro256** 1.0; its state is the four words `student.ckpt` stores in `hd.rng`."""

    def __init__(self, seed=None, state=None):
        if state is not None:
            if len(state) != 4 or not any(state):
                raise ValueError("xoshiro256** state: expected four words, not all zero")
            self.s = [w & M64 for w in state]
        else:
            sm = SplitMix64(seed)
            self.s = [sm.next() for _ in range(4)]

    def next(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def next_int(self, bound):
        """Uniform in 0..<bound, unbiased (Lemire), exactly as `Xoshiro256.nextInt(below:)`."""
        product = self.next() * bound
        low = product & M64
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                product = self.next() * bound
                low = product & M64
        return product >> 64

    def next_unit_float(self):
        """Uniform in [0, 1) with 24 bits: exact in float32 (and in a Python float)."""
        return (self.next() >> 40) / 16777216.0


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
