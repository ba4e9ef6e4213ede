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

import numbers
import zlib

import numpy as np
import torch

#: purposes of episode seeds: training, evaluation and the commands' default episodes
PURPOSES = ("train", "val", "test", "rollout", "analyze", "sweep", "compare")
#: the streams of badger_graph 0.3.0 (see :data:`LEGACY_NAMES`)
_STREAMS_0_3 = ("episodes", "identities", "growth", "topology", "addresses", "es")
#: the random draws made from one episode seed, each from its own stream
STREAMS = (*_STREAMS_0_3, "rounds")


#: names that keep their CRC32 encoding of badger_graph 0.3.0, so the library's own episode
#: streams (and every figure measured with them) stay as they were; their CRCs are pairwise
#: distinct (tested). Every other name (a later stream too) is encoded byte for byte.
LEGACY_NAMES = frozenset(PURPOSES + _STREAMS_0_3)


def _words(value: int | str) -> list[int]:
    """A key as 32-bit words: a tag (kind and word count) followed by the words.

    Names are tagged apart from integers (a name is not its CRC), and every key says how
    many words it has, so no list of keys is a prefix, suffix or re-split of another. A
    name is its UTF-8 bytes, four to a word, after its byte count (the library's own names,
    :data:`LEGACY_NAMES`, keep their earlier CRC32 word under a tag of their own), so two
    different names never share a stream.

    Raises:
        TypeError: a key that is neither a name nor an integer (floats and bools are
            refused: ``5.9`` would otherwise be ``5`` and ``True`` be ``1``).
    """
    if isinstance(value, str):
        if value in LEGACY_NAMES:
            return [0x5354_0001, zlib.crc32(value.encode())]
        data = value.encode("utf-8", "surrogatepass")
        data += bytes(-len(data) % 4)
        words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
        return [0x5354_0002, len(value.encode("utf-8", "surrogatepass")), len(words), *words]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"seed keys must be ints >= 0 or names (str), got {value!r} ({type(value).__name__})"
        )
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

    Injective before the hash: the number of keys and each key's kind, length and full
    content are part of the entropy (NumPy's ``SeedSequence`` alone ignores trailing zero words, so
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
