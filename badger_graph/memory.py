"""Up-front memory checks: refuse what cannot fit, naming its size, before allocating."""

from __future__ import annotations

import torch

#: bytes a fully connected pair costs at least while the edges are built and used
BYTES_PER_PAIR = 64


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device`` (``None``: unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_pairs_fit(num_pairs: int, device: torch.device, what: str) -> None:
    """Refuse up front an all-pairs edge set that cannot fit in memory, naming its size."""
    need = num_pairs * BYTES_PER_PAIR
    free = available_memory(device)
    if free is not None and need > free:
        raise MemoryError(
            f"{what}: {num_pairs:,} edges need at least {need / 2**30:.1f} GiB, but only "
            f"{free / 2**30:.1f} GiB are available on {device}; use fewer experts per agent, "
            f"or a sparse topology (RandomOutDegree, RandomInDegree, Attention(top_k=...))"
        )


#: bytes per node per hidden channel a lifetime needs at least (states, inputs, messages
#: and the GRU's gates of a step, in float32)
BYTES_PER_NODE_CHANNEL = 4 * 8


def check_nodes_fit(batch_size: int, num_experts: int, hidden: int, device) -> None:
    """Refuse up front a batch of agents whose states cannot fit in memory, naming it.

    Raises:
        MemoryError: before allocating, naming the agents, the experts and the memory.
    """
    need = batch_size * num_experts * hidden * BYTES_PER_NODE_CHANNEL
    free = available_memory(torch.device(device))
    if free is not None and need > free:
        raise MemoryError(
            f"{batch_size:,} agents of {num_experts:,} experts (hidden {hidden}) need at least "
            f"{need / 2**30:.1f} GiB, but only {free / 2**30:.1f} GiB are available on "
            f"{device}; run fewer agents at once (--data.eval_batch_size, --data.batch_size, "
            f"--episodes) or fewer experts"
        )
