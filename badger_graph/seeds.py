"""Seeds that are distinct as random streams, not only as integers.

``torch.Generator().manual_seed(s)`` keeps only the low 32 bits of ``s``: seeds that differ
only above them (``2**60`` and ``2**61``) give the same random numbers, and neighbouring
seeds used for related draws (``s`` for the targets, ``s + 1`` for the identities) overlap
with the next batch's. Every random draw of the library therefore goes through
:func:`generator`, which hashes the seed *and the purpose of the draw* with NumPy's
``SeedSequence`` into the generator's seed; and the episode seeds of training batches,
evaluation batches and the commands' defaults come from :func:`episode_seed`, which hashes
a purpose name and the batch's index. Two different (seed, stream) pairs collide with
probability ``2**-32`` per pair; the seeds the library itself uses are tested pairwise
distinct as streams (``tests/test_seeds.py``).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

#: purposes of episode seeds: training, evaluation and the commands' default episodes
PURPOSES = ("train", "val", "test", "rollout", "analyze", "sweep", "compare")
#: the random draws made from one episode seed, each from its own stream
STREAMS = ("episodes", "identities", "growth", "topology", "addresses", "es")


def _words(value: int | str) -> list[int]:
    """A key as 32-bit words: a tag (kind and word count) followed by the words.

    Names are tagged apart from integers (a name is not its CRC), and every key says how
    many words it has, so no list of keys is a prefix, suffix or re-split of another.
    """
    if isinstance(value, str):
        return [0x5354_0001, zlib.crc32(value.encode())]
    value = int(value)
    if value < 0:
        raise ValueError(f"seeds must be >= 0, got {value}")
    words = []
    while True:
        words.append(value & 0xFFFF_FFFF)
        value >>= 32
        if not value:
            break
    return [0x494E_0000 | len(words), *words]


def derive(*keys: int | str, bits: int = 63) -> int:
    """A ``bits``-bit integer hashed from ``keys`` (ints >= 0 and names).

    Injective before the hash: the number of keys and each key's kind and length are part
    of the entropy (NumPy's ``SeedSequence`` alone ignores trailing zero words, so
    ``[5]`` and ``[5, 0]``, or ``[2**32]`` and ``[0, 1]``, would be the same stream).
    """
    entropy = [len(keys)]
    for key in keys:
        entropy += _words(key)
    words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(words[0]) << 32 | int(words[1])) >> (64 - bits)


def episode_seed(purpose: str, *index: int) -> int:
    """The episode seed of batch ``index`` of ``purpose`` (one of :data:`PURPOSES`)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    return derive(purpose, *index)


def generator(seed: int, stream: str = "episodes") -> torch.Generator:
    """A CPU generator for the draws of ``stream`` (one of :data:`STREAMS`) of ``seed``."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    return torch.Generator().manual_seed(derive(seed, stream, bits=32))
