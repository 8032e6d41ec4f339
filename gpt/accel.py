"""The GPU path of a training step: bf16 autocast, pinned asynchronous batch copies, optional
torch.compile, and reading the loss without waiting for the GPU on every step.

On CPU every function here is the identity (or a plain ``loss.item()``), so CPU training runs
exactly as before.
"""
from __future__ import annotations

import contextlib

import torch

CUDA_LOSS_READ_EVERY = 10  # on CUDA, the loss is copied to the host (one sync) every this many steps


def autocast(device: torch.device):
    """bf16 autocast on a CUDA GPU that has bf16 (Ampere and later), otherwise nothing. The weights,
    gradients and optimiser state stay float32; matmuls and attention run in bf16."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a batch to the device; to a GPU from pinned memory without blocking the host."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def compiled(model: torch.nn.Module, enabled: bool):
    """``torch.compile(model)`` for the training forward when asked (same parameters), else the model."""
    return torch.compile(model) if enabled else model


class LossReader:
    """The training loss of each step as a float, without a host sync per step on CUDA.

    CPU (and MPS): ``loss.item()`` at once. CUDA: the loss stays on the device and is copied
    to the host, with the pending steps' losses, in one transfer every ``every`` steps and
    whenever ``force`` is set (evaluation steps, the last step); ``read`` returns the
    (step, loss) pairs read this time (empty between reads).
    """

    def __init__(self, device: torch.device, every: int = CUDA_LOSS_READ_EVERY):
        self.lazy = device.type == "cuda"
        self.every = every
        self.pending: list[tuple[int, torch.Tensor]] = []

    def read(self, loss: torch.Tensor, step: int, force: bool = False) -> list[tuple[int, float]]:
        if not self.lazy:
            return [(step, loss.item())]
        self.pending.append((step, loss.detach().float()))
        if not (force or step % self.every == 0):
            return []
        values = torch.stack([t for _, t in self.pending]).tolist()
        out = [(s, v) for (s, _), v in zip(self.pending, values)]
        self.pending = []
        return out


def device_status(device: torch.device | str) -> str:
    """The device a run trains on, in words, live: on CUDA its memory in use (torch's own counters) and, when
    NVML is installed (``nvidia-ml-py``), its utilisation, like the line one watches in ``nvidia-smi``."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"{device.type} ({torch.get_num_threads()} threads)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    gib = 2 ** 30
    used, peak = torch.cuda.memory_allocated(index) / gib, torch.cuda.max_memory_allocated(index) / gib
    text = (f"cuda:{index} {props.name} · memory {used:.2f} GiB in use (peak {peak:.2f}) "
            f"of {props.total_memory / gib:.0f} GiB")
    try:
        text += f" · utilisation {torch.cuda.utilization(index)} %"
    except Exception:  # noqa: BLE001 - NVML missing or unusable: memory only, as torch can tell it
        text += " · utilisation unknown (install nvidia-ml-py)"
    return text


__all__ = ["autocast", "to_device", "compiled", "LossReader", "CUDA_LOSS_READ_EVERY", "device_status"]
