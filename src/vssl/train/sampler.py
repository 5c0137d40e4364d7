"""Which samples each process reads at each step: one seeded global schedule, cut per process.

An epoch is a permutation of the dataset seeded by (seed, epoch), cut into global batches of
``batch_size`` (the last partial batch is dropped: contrastive learning needs full batches). Optimiser step
``s`` of the run always trains on global batch ``s`` of this schedule, whatever the number of processes
or accumulated micro-batches, so steps and epochs mean the same thing at any world size and a run can
be resumed on more or fewer devices:

* a global batch is split into ``accumulate`` micro-batches, one per forward/backward pass;
* each micro-batch is split into ``world_size`` contiguous slices, one per process, in rank order, so the
  all-gathered embeddings of a micro-batch are in the order a single process would hold them.

With one process and no accumulation, a process reads each global batch whole, in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from vssl.errors import ConfigError


def micro_batch_size(batch_size: int, world_size: int = 1, accumulate: int = 1) -> int:
    """Pairs one process holds in one forward pass: ``batch_size / (world_size * accumulate)``."""
    parts = world_size * accumulate
    if accumulate < 1 or batch_size % parts:
        raise ConfigError(
            f"train: batch_size={batch_size} must split evenly over {world_size} process(es) x "
            f"accumulate={accumulate} micro-batch(es)"
        )
    return batch_size // parts


class EpochOrder:
    """Index order one process reads in one epoch, started ``skip_batches`` global batches in.

    The indices come in micro-batches of `micro_batch_size`; every ``accumulate`` consecutive micro-batches
    form one optimiser step.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        skip_batches: int = 0,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
    ):
        micro = micro_batch_size(batch_size, world_size, accumulate)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
        usable = (n // batch_size) * batch_size
        # [steps, accumulate, world, micro]: pick this rank's slice of every micro-batch
        batches = order[skip_batches * batch_size : usable].reshape(-1, accumulate, world_size, micro)
        self.indices: list[int] = batches[:, :, rank].reshape(-1).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Seed of torch's global generator for optimiser step ``step`` on process ``rank`` (dropout draws).

    The trainer reseeds before every step, so the draws of a step depend on (seed, step, rank) alone and a
    resumed run makes the draws an uninterrupted one makes (a generator's state is not in the checkpoint).
    """
    return int(np.random.SeedSequence([seed, step, rank, 0xD5]).generate_state(1, np.uint64)[0] >> 1)
