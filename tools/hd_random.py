"""The generators of Sources/HDTensor/Random.swift in plain Python (standard library only), draw for
draw: SplitMix64 (Steele, Lea, Flood 2014) expands seeds and hashes indices; xoshiro256** 1.0 draws;
integers below a bound by Lemire's multiply-and-reject; floats as 24-bit fractions. Shared by
tools/task_split.py (the labelled tasks' dev splits) and tools/torch/hd_rng.py (the torch trainer's
data order and masking).
"""

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
