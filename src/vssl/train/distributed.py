"""Data-parallel training on PyTorch's own engine: one process per device, launched by ``torchrun``.

``torchrun`` (single node: ``--nproc_per_node N``; several nodes: ``--nnodes M`` and a rendezvous endpoint)
starts one process per device and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous
address; `init_distributed` reads them, joins the process group (NCCL for CUDA devices, gloo for CPU)
and binds the process to ``cuda:LOCAL_RANK``. Without those variables (a plain ``vssl train``) it
returns a one-process `DistEnv` and nothing below communicates.

What the trainer asks of the group, all here:

* `DistEnv.wrap`: DistributedDataParallel around the training module (gradients averaged over processes);
* `DistEnv.gather`: embeddings of every process's pairs, gradients flowing back (global-batch contrast);
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
    """``[b, ...]`` on each of W processes -> ``[W*b, ...]`` (rank order) on every process.

    Backward: every process's loss depends on every slice, so the gradient of this process's slice is the
    sum over processes of their gradients for it (a reduce-scatter). DDP then averages parameter gradients
    over processes, which makes the update the gradient of the mean of the processes' losses.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.world = dist.get_rank(), dist.get_world_size()
        parts = [torch.empty_like(x, memory_format=torch.contiguous_format) for _ in range(ctx.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        if dist.get_backend() == dist.Backend.NCCL:
            mine = torch.empty_like(grad.chunk(ctx.world)[ctx.rank])
            dist.reduce_scatter_tensor(mine, grad)
            return mine
        total = grad.clone()  # gloo has no reduce-scatter: sum everything, keep our slice
        dist.all_reduce(total)
        return total.chunk(ctx.world)[ctx.rank]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All processes' ``x [b, ...]`` joined in rank order ``[W*b, ...]``, differentiable (see `_GatherWithGrad`)."""
    return _GatherWithGrad.apply(x)


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

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """See `gather_with_grad`; the identity on one process."""
        return gather_with_grad(x) if self.distributed else x

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, float]:
        """Scalars averaged over processes (one all-reduce), as floats."""
        if not values:
            return {}
        stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()]).to(self.device)
        if self.distributed:
            dist.all_reduce(stacked)
            stacked /= self.world_size
        return dict(zip(values, stacked.tolist(), strict=True))

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
