"""Data-parallel training under torchrun: one process per core or GPU, the same steps as one process.

    torchrun --standalone --nproc_per_node=N -m gpt.train ...

``--batch-size`` stays the global batch. Every rank draws the same global batch the 1-process run
would (same seed, same generator) and trains on its slice; one all-reduce per step averages the
gradients (and the loss) over the ranks, so every rank takes the 1-process run's optimiser step
and the weights stay identical everywhere. Rank 0 alone prints and writes checkpoints and reports.
No DistributedDataParallel wrapper: the model, its hooks and its state_dict keys stay as they are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (cuda:LOCAL_RANK) under torchrun, else ``device``."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            lower = batch_size - batch_size % self.world_size
            raise ValueError(f"--batch-size is the global batch and must split evenly over the {self.world_size} "
                             f"processes: {batch_size} does not; use {lower or self.world_size} or "
                             f"{lower + self.world_size}.")

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (rows rank*B/N .. (rank+1)*B/N)."""
        if not self.active:
            return batch
        n = batch.size(0) // self.world_size
        return batch[self.rank * n:(self.rank + 1) * n]

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Rank 0's weights everywhere (they already agree when every rank seeds alike; this makes sure)."""
        if self.active:
            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    dist.broadcast(t.data, src=0)

    def average_gradients(self, model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
        """Mean of every gradient and of the loss over the ranks, in one all-reduce of one flat buffer.

        Each rank's loss is the mean over its equal slice, so the mean over ranks is the global
        batch's loss and the mean gradient is the global batch's gradient. Returns the mean loss.
        """
        if not self.active:
            return loss
        grads = [p.grad for p in _unique(model) if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1).to(grads[0].dtype)])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        return flat[-1]


def _unique(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return list({id(p): p for p in model.parameters()}.values())


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str = "auto") -> Context:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); world size 1 otherwise."""
    if not launched_by_torchrun():
        return Context()
    if not dist.is_initialized():
        use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return current()


def current() -> Context:
    """The process group this process is in (world size 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(),
                   local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


__all__ = ["Context", "setup", "current", "teardown", "launched_by_torchrun"]
