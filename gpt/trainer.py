"""A model-agnostic training loop that yields events, so a UI can stream it and stop it.

Iterate ``Trainer.run()``; each yielded ``TrainEvent`` comes after an optimiser step,
so if you stop iterating, the model is exactly as it was at that step.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from . import accel, distributed
from .config import TrainConfig
from .data import TokenData
from .model import eval_mode
from .optim import make_optimizer  # noqa: F401  (its home is gpt.optim; kept importable from here)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but is not available; use --device cpu.")
    return torch.device(name)


@dataclass
class TrainEvent:
    step: int  # optimiser steps done so far
    max_iters: int
    train_loss: float  # loss of this step's batch
    lr: float
    tokens_per_s: float
    elapsed_s: float
    val_loss: float | None = None  # set on evaluation steps (mean over eval_iters batches)
    eval_train_loss: float | None = None
    sample: str | None = None
    done: bool = False
    eval_s: float = 0.0  # wall time this step spent on evaluation and sampling (inside elapsed_s)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then decay to cfg.final_lr at max_iters.

    ``cosine``: half a cosine over all the steps after warmup (nanoGPT).
    ``wsd`` (warmup-stable-decay): hold cfg.lr, then fall linearly to cfg.final_lr over the last
    ``decay_frac`` of those steps. Staying high for longer and annealing at the end reaches a
    lower loss in a short run.
    """
    if cfg.warmup_iters and step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / cfg.warmup_iters
    span = max(1, cfg.max_iters - cfg.warmup_iters)
    progress = min(1.0, (step - cfg.warmup_iters) / span)
    if cfg.schedule == "wsd":
        decayed = max(0.0, progress - (1 - cfg.decay_frac)) / cfg.decay_frac
        return cfg.lr - decayed * (cfg.lr - cfg.final_lr)
    return cfg.final_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.final_lr)


@torch.no_grad()
def estimate_loss(model, data: TokenData, split: str, batch_size: int, iters: int,
                  generator: torch.Generator, **forward_kw) -> float:
    """Mean loss over ``iters`` random batches of one split, in eval mode.

    ``forward_kw`` goes to the model's forward (``causal``, ``attn_scale``).
    """
    device = model.device
    total = 0.0
    with eval_mode(model):
        for _ in range(iters):
            x, y = data.get_batch(split, batch_size, model.config.block_size, generator)
            _, loss = model(x.to(device), y.to(device), **forward_kw)
            total += loss.item()
    return total / iters


@dataclass
class Trainer:
    model: torch.nn.Module
    data: TokenData
    config: TrainConfig
    tokenizer: object | None = None
    history: list[TrainEvent] = field(default_factory=list)

    def __post_init__(self):
        self.data.check_block_size(self.model.config.block_size)
        self.dist = distributed.current()  # world size 1 unless torchrun started this process
        self.dist.check_batch(self.config.batch_size)
        self.device = self.dist.device(resolve_device(self.config.device))
        self.model.to(self.device)
        self.dist.broadcast_parameters(self.model)
        self._forward = accel.compiled(self.model, self.config.compile)  # the training forward
        self._losses, self._last_loss = accel.LossReader(self.device), float("nan")
        self.optimizer = make_optimizer(self.model, self.config)
        self.step = 0
        self.elapsed_offset = 0.0  # seconds trained before this trainer (a resumed run's curve continues)
        self.mid_step = False  # True while a step is half done: no state() then
        self._streams: tuple[torch.Generator, torch.Generator] | None = None  # batch and eval generators
        self._pending_rng: dict | None = None  # set by restore(), applied when run() starts

    # settings a resumed run may change: where it stops, where it runs
    RESUME_MAY_CHANGE = ("stop_at", "device")

    def state(self) -> dict:
        """A snapshot of what the next step depends on besides the weights: the step, the optimiser
        state, the RNG states (torch CPU (+ CUDA), the batch and eval generators), the settings and the
        seconds trained. The schedule position is ``lr_at(step, config)``. Take it between steps."""
        if self.mid_step:
            raise RuntimeError("the trainer stopped in the middle of a step; its state is not a step's state.")
        if self._pending_rng is not None:  # restored, not run since: the states it was given
            rng = dict(self._pending_rng)
        elif self._streams is None:  # never run: what run() will seed
            seeded = [torch.Generator().manual_seed(self.config.seed + i) for i in (0, 0, 1)]
            rng = dict(zip(("torch", "batch", "eval"), (g.get_state() for g in seeded)))
        else:
            rng = {"torch": torch.get_rng_state(), "batch": self._streams[0].get_state(),
                   "eval": self._streams[1].get_state()}
            if self.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(self.device)
        elapsed = self.history[-1].elapsed_s if self.history else self.elapsed_offset
        return {"step": self.step, "optimizer": copy.deepcopy(self.optimizer.state_dict()), "rng": rng,
                "train_config": self.config.to_dict(), "elapsed_s": elapsed}

    def restore(self, state: dict) -> None:
        """Continue exactly where ``state()`` was taken: the next ``run()`` takes step ``state['step'] + 1``
        with the same optimiser moments, learning rate and random streams as the uninterrupted run."""
        saved, now = state["train_config"], self.config.to_dict()
        changed = sorted(k for k in now if k not in self.RESUME_MAY_CHANGE and saved.get(k) != now[k])
        if changed:
            raise ValueError(f"a resumed run keeps its settings; these differ: {', '.join(changed)}.")
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed_offset = float(state.get("elapsed_s", 0.0))
        self._pending_rng = dict(state["rng"])

    def _start_streams(self) -> tuple[torch.Generator, torch.Generator]:
        """The batch and eval generators. A fresh trainer seeds them (and torch) from config.seed;
        after ``restore`` the saved states are put back when the run starts."""
        if self._streams is None:
            torch.manual_seed(self.config.seed)
            s = self.config.seed
            self._streams = (torch.Generator().manual_seed(s), torch.Generator().manual_seed(s + 1))
        if self._pending_rng is not None:
            rng, self._pending_rng = self._pending_rng, None
            torch.set_rng_state(rng["torch"])
            self._streams[0].set_state(rng["batch"])
            self._streams[1].set_state(rng["eval"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        return self._streams

    def _read_loss(self, loss: torch.Tensor, end: int) -> float:
        """This step's loss; a non-finite one raises TrainingDiverged before the optimiser step. On CUDA
        it is read every few steps (accel.LossReader): in between, the last value read, and the
        history's events get their own values when they are read."""
        step = self.step + 1
        read = self._losses.read(loss, step, force=step % self.config.eval_interval == 0 or step >= end)
        events = {e.step: e for e in self.history[-len(read):]} if read else {}
        for s, value in read:
            if not math.isfinite(value):
                raise TrainingDiverged(f"the loss became {value} at step {s}: training stopped. "
                                       "Lower the learning rate (or raise warmup) and start again.")
            if s in events:
                events[s].train_loss = value
        if read:
            self._last_loss = read[-1][1]
        return self._last_loss

    def evaluate(self, generator: torch.Generator) -> tuple[float, float]:
        c = self.config
        return (estimate_loss(self.model, self.data, "train", c.batch_size, c.eval_iters, generator),
                estimate_loss(self.model, self.data, "val", c.batch_size, c.eval_iters, generator))

    def sample(self, n_tokens: int, seed: int = 0) -> str:
        """A short unconditional sample from the documented start token."""
        if self.tokenizer is None:
            return ""
        g = torch.Generator(device="cpu").manual_seed(seed)
        idx = torch.tensor([[self.tokenizer.start_id]], device=self.device)
        with eval_mode(self.model):
            out = self.model.generate(idx, n_tokens, temperature=1.0, generator=g)
        return self.tokenizer.decode(out[0, 1:].tolist())

    def run(self) -> Iterator[TrainEvent]:
        """Train, yielding one event per step; evaluation (and samples) at their intervals."""
        c = self.config
        batch_gen, eval_gen = self._start_streams()
        bs = self.model.config.block_size
        self.model.train()
        t0 = time.perf_counter()
        last_t, last_step = t0, self.step
        end = c.max_iters if c.stop_at is None else min(c.max_iters, c.stop_at)
        while self.step < end:
            self.mid_step = True
            lr = lr_at(self.step, c)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = self.data.get_batch("train", c.batch_size, bs, batch_gen)  # the global batch
            self.optimizer.zero_grad(set_to_none=True)
            with accel.autocast(self.device):
                _, loss = self._forward(accel.to_device(self.dist.shard(x), self.device),
                                        accel.to_device(self.dist.shard(y), self.device))
            loss.backward()
            loss = self.dist.average_gradients(self.model, loss)  # the global batch's loss and gradient
            loss_value = self._read_loss(loss, end)
            if c.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.optimizer.step()
            self.step += 1

            now = time.perf_counter()
            done = self.step >= c.max_iters
            tps = (self.step - last_step) * c.batch_size * bs / max(now - last_t, 1e-9)
            ev = TrainEvent(step=self.step, max_iters=c.max_iters, train_loss=loss_value, lr=lr,
                            tokens_per_s=tps, elapsed_s=now - t0 + self.elapsed_offset, done=done)
            if self.step % c.eval_interval == 0 or done:
                ev.eval_train_loss, ev.val_loss = self.evaluate(eval_gen)
                if not math.isfinite(ev.val_loss):
                    raise TrainingDiverged(f"the validation loss became {ev.val_loss} at step {self.step}.")
            if c.sample_interval and (self.step % c.sample_interval == 0 or done):
                ev.sample = self.sample(c.sample_tokens, seed=c.seed)
            self.model.train()
            last_t, last_step = time.perf_counter(), self.step
            ev.eval_s = last_t - now
            self.history.append(ev)
            self.mid_step = False
            yield ev
