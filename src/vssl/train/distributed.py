"""Data-parallel training on PyTorch's own engine: one process per device, launched by ``torchrun``.

``torchrun`` (single node: ``--nproc_per_node N``; several nodes: ``--nnodes M`` and a rendezvous endpoint)
starts one process per device and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous
address; `init_distributed` reads them, joins the process group (NCCL for CUDA devices, gloo for CPU)
and binds the process to ``cuda:LOCAL_RANK``. Without those variables (a plain ``vssl train``) it
returns a one-process `DistEnv` and nothing below communicates.

What the trainer asks of the group, all here:

* `DistEnv.wrap`: DistributedDataParallel around the training module (gradients averaged over processes);
* `DistEnv.gather`: embeddings of every process's pairs, gradients flowing back (global-batch contrast;
  the processes may hold different numbers of pairs when unreadable items were skipped);
* `DistEnv.total` and `DistEnv.gather_counts` for decisions all processes must take together (skip a
  step, stop), and `DistEnv.gather_objects` for the records behind them (which files could not be read);
* `DistEnv.from_main`: rank 0 reads (e.g. a resume checkpoint) and every process gets the result, or
  rank 0's error, so one local file or one mistake never leaves the others waiting;
* `DistEnv.mean` for logged values, `DistEnv.check_replicas` to prove the processes hold one model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from vssl.errors import VsslError

log = logging.getLogger(__name__)

T = TypeVar("T")


class _GatherWithGrad(torch.autograd.Function):
    """``[b_r, ...]`` on each process r of W -> ``[sum b_r, ...]`` (rank order) on every process.

    ``sizes``: every process's ``b_r`` when they differ (a micro-batch with unreadable items skipped; the
    trainer knows them from its per-step agreement, so no collective here waits on the host); the rows
    are then padded to the largest for the collectives and the result is the one-process batch without
    the skipped items, at any world size. None: every process holds ``len(x)`` rows.
    Backward: every process's loss depends on every slice, so the gradient of this process's slice is the
    sum over processes of their gradients for it (a reduce-scatter). DDP then averages parameter gradients
    over processes, which makes the update the gradient of the mean of the processes' losses.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int] | None) -> torch.Tensor:
        ctx.rank, ctx.world = dist.get_rank(), dist.get_world_size()
        ctx.sizes = list(sizes) if sizes is not None else [x.shape[0]] * ctx.world
        if ctx.sizes[ctx.rank] != x.shape[0]:
            raise ValueError(f"gather: {x.shape[0]} rows here, {ctx.sizes[ctx.rank]} announced for rank {ctx.rank}")
        rows = max(ctx.sizes)
        parts = [x.new_empty((rows, *x.shape[1:])) for _ in range(ctx.world)]
        dist.all_gather(parts, _pad_rows(x, rows))
        return torch.cat([part[:n] for part, n in zip(parts, ctx.sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        rows = max(ctx.sizes)
        if min(ctx.sizes) == rows:  # no padding: the usual case
            padded = grad.contiguous()
        else:
            padded = torch.cat([_pad_rows(g, rows) for g in grad.split(ctx.sizes)])  # [W * rows, ...]
        if dist.get_backend() == dist.Backend.NCCL:
            mine = padded.new_empty((rows, *grad.shape[1:]))
            dist.reduce_scatter_tensor(mine, padded)
        else:  # gloo has no reduce-scatter: sum everything, keep our slice
            total = padded.clone() if padded.data_ptr() == grad.data_ptr() else padded
            dist.all_reduce(total)
            mine = total.chunk(ctx.world)[ctx.rank]
        return mine[: ctx.sizes[ctx.rank]], None


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` contiguous, with zero rows appended up to ``rows``."""
    x = x.contiguous()
    if x.shape[0] == rows:
        return x
    return torch.cat([x, x.new_zeros((rows - x.shape[0], *x.shape[1:]))])


def gather_with_grad(x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
    """All processes' ``x [b_r, ...]`` joined in rank order ``[sum b_r, ...]``, differentiable (`_GatherWithGrad`)."""
    return _GatherWithGrad.apply(x, sizes)


def parameter_digest(module: nn.Module) -> str:
    """SHA-256 of every parameter's values (in a fixed order, independent of memory layout and device).

    Buffers are left out: BatchNorm running statistics legitimately differ between processes after a step
    (DDP re-broadcasts rank 0's at the next forward), parameters never may.
    """
    h = hashlib.sha256()
    for name, p in module.named_parameters():
        h.update(name.encode())
        h.update(p.detach().to("cpu", memory_format=torch.contiguous_format).numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this module created the process group, so `close` destroys it

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, writes checkpoints and the release."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around ``module`` (on ``device``) when there are several processes."""
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def gather(self, x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
        """See `gather_with_grad`; the identity on one process."""
        return gather_with_grad(x, sizes) if self.distributed else x

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Scalars averaged over processes (one all-reduce), as floats."""
        if not values:
            return {}
        stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()]).to(self.device)
        if self.distributed:
            dist.all_reduce(stacked)
            stacked /= self.world_size
        return dict(zip(values, stacked.tolist(), strict=True))

    def total(self, counts: list[int | bool | torch.Tensor]) -> list[int]:
        """Integers (or 0-d tensors, e.g. flags computed on the device) summed over processes (one all-reduce).

        Every decision that changes what a process does next (skip a step, stop) is taken on such a total,
        so all processes take it together.
        """
        if not self.distributed:
            return [int(c) for c in counts]
        values = torch.stack([torch.as_tensor(c).to(self.device, torch.int64).reshape(()) for c in counts])
        dist.all_reduce(values)
        return values.tolist()

    def gather_counts(self, counts: list[int]) -> list[list[int]]:
        """Every process's ``counts`` (lists of one length), in rank order (one all-gather)."""
        if not self.distributed:
            return [list(counts)]
        mine = torch.tensor(counts, dtype=torch.int64, device=self.device)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine)
        return torch.stack(parts).tolist()

    def gather_objects(self, obj: T) -> list[T]:
        """Every process's ``obj`` (picklable), in rank order."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def from_main(self, read: Callable[[], T]) -> T:
        """``read()`` on rank 0, its result (or its exception) on every process."""
        if not self.distributed:
            return read()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", read())
            except Exception as exc:  # raised again on every rank, below
                box[0] = ("error", exc)
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def check_replicas(self, module: nn.Module) -> list[str]:
        """Every process's `parameter_digest`; raises `VsslError` when the replicas differ."""
        digest = parameter_digest(module)
        if not self.distributed:
            return [digest]
        digests: list[Any] = [None] * self.world_size
        dist.all_gather_object(digests, digest)
        if len(set(digests)) > 1:
            odd = [r for r, d in enumerate(digests) if d != digests[0]]
            raise VsslError(f"data-parallel replicas diverged: parameters of rank(s) {odd} differ from rank 0's")
        return digests

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this module joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str) -> DistEnv:
    """The process's `DistEnv` from torchrun's environment; joins the process group when there is one.

    ``device`` is the config's: with CUDA each process takes ``cuda:LOCAL_RANK`` (any index given is
    replaced); NCCL connects CUDA processes, gloo CPU ones. Processes other than rank 0 log warnings only.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device)
    if world == 1 and not dist.is_initialized():
        return DistEnv(device=dev)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=dev if dev.type == "cuda" else None)
    env = DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns)
    if not env.is_main:
        logging.getLogger("vssl").setLevel(logging.WARNING)
    log.info("data-parallel training: %d processes (%s), rank 0 on %s", env.world_size, dist.get_backend(), dev)
    return env
