"""Model and training configuration, plus the named presets of the model ladder.

The ladder follows the "Let's build GPT" lecture: each rung adds one idea
(attention, several heads, MLP + LayerNorm + residuals, depth) to the one before.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


ACTIVATIONS = ("gelu", "gelu_tanh")


@dataclass
class GPTConfig:
    """Everything that fixes the model's shape and its attention behaviour.

    ``attn_scale`` is the factor applied to QK^T: ``None`` means the standard
    1/sqrt(d_k) (``gpt.model.attention_scale``); a float means exactly that factor (1.0 = unscaled).
    """

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    causal: bool = True
    pos_emb: str = "learned"  # "learned" | "none"
    attn_scale: float | None = None
    mlp: bool = True  # feed-forward (4x, GELU) after attention
    residual: bool = True  # pre-LayerNorm + residual connections around each sub-layer
    tie_weights: bool = True  # lm_head shares the token embedding matrix
    activation: str = "gelu"  # the MLP's nonlinearity: "gelu" (exact) or "gelu_tanh" (GPT-2's "gelu_new")
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head if self.n_head else 0

    def validate(self) -> None:
        """Raise ValueError with a message that says what to change."""
        ints = {k: getattr(self, k) for k in ("vocab_size", "block_size", "n_embd")}
        for name, value in ints.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}.")
        for name in ("n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}.")
        if self.n_layer > 0 and self.n_head < 1:
            raise ValueError("n_head must be at least 1 when the model has attention layers.")
        if self.n_head and self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); "
                f"try n_embd = {self.n_head * max(1, round(self.n_embd / self.n_head))}."
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if self.pos_emb not in ("learned", "none"):
            raise ValueError(f"pos_emb must be 'learned' or 'none', got {self.pos_emb!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}.")
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ValueError(f"layer_norm_eps must be a small positive number (e.g. 1e-5), got {eps!r}.")
        if self.attn_scale is not None:
            s = float(self.attn_scale)
            if not (s == s and abs(s) != float("inf")):
                raise ValueError(f"attn_scale must be a finite number or None, got {self.attn_scale!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GPTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


# The model ladder. vocab_size is filled in from the tokenizer.
PRESETS: dict[str, dict[str, Any]] = {
    # token embedding straight to logits: each token predicts the next from itself alone
    "bigram": dict(n_layer=0, n_head=0, n_embd=64, block_size=32, pos_emb="none",
                   mlp=False, residual=False, tie_weights=False),
    # one causal self-attention head, no MLP, no residual stream
    "single-head": dict(n_layer=1, n_head=1, n_embd=64, block_size=32, mlp=False, residual=False),
    # several heads side by side, still no MLP
    "multi-head": dict(n_layer=1, n_head=4, n_embd=64, block_size=32, mlp=False, residual=False),
    # one full transformer block: attention + MLP, pre-LayerNorm, residuals
    "block": dict(n_layer=2, n_head=4, n_embd=64, block_size=32),
    # nanoGPT's CPU recipe
    "gpt-tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    # nanoGPT's "baby GPT" shape
    "gpt-small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
    # the smallest model with induction heads (Olsson et al. 2022): 2 attention-only layers, untied
    # unembedding (tied, it stayed on the loss plateau); recipe: gpt.synthetic.INDUCTION_TRAIN
    "induction": dict(n_layer=2, n_head=2, n_embd=64, block_size=64, mlp=False, tie_weights=False),
}

# val losses of the "GPT from scratch" ladder on Tiny Shakespeare, for reference: its own model sizes,
# its full GPT (10 layers, 512 wide, block 256) trained 20 minutes on an A100
REFERENCE_LADDER = {"bigram": 2.58, "single-head": 2.41, "multi-head": 2.28, "block": 2.17, "gpt-tiny": 1.64}

PRESET_NOTES = {
    "bigram": "token embedding -> logits (no attention)",
    "single-head": "one causal self-attention head, no MLP",
    "multi-head": "4 heads in parallel, no MLP",
    "block": "attention + MLP + pre-LayerNorm + residuals (2 blocks)",
    "gpt-tiny": "4 layers x 4 heads x 128, block 64 (nanoGPT CPU recipe)",
    "gpt-small": "6 layers x 6 heads x 384, block 256",
    "induction": "2 attention-only layers x 2 heads x 64, untied: grows an induction head on repeated text",
}


def preset_config(name: str, vocab_size: int, **overrides: Any) -> GPTConfig:
    """A GPTConfig for a named ladder preset, with optional overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    kw = dict(PRESETS[name])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return GPTConfig(vocab_size=vocab_size, **kw)


def warmup_for(max_iters: int) -> int:
    """The default warm-up of a run of ``max_iters`` steps: a tenth of it, at most 100 steps."""
    return min(100, max_iters // 10)


SCHEDULES = ("cosine", "wsd")  # learning-rate decay after warmup (see gpt.trainer.lr_at)


DEVICES = ("auto", "cpu", "cuda", "mps")

# The fastest recipe found for gpt-tiny on Tiny Shakespeare (char) to val <= 1.89 on 2 CPU cores
# (``python -m gpt.bench``; sweeps in the bench's docstring): Muon on the hidden matrices, batch 32,
# warmup-stable-decay. TrainConfig keywords; min_lr is lr / 20. The app's Train tab reads it.
FAST_RECIPE: dict[str, Any] = dict(optimizer="muon", batch_size=32, max_iters=220, lr=8e-3, min_lr=4e-4,
                                   muon_lr=0.03, muon_momentum=0.95, nesterov=True, ns_steps=5,
                                   warmup_iters=20, schedule="wsd", decay_frac=0.4, beta1=0.8, beta2=0.99)
OPTIMIZERS = ("adamw", "muon")  # see gpt.optim


def _opt(default, help: str, **extra) -> Any:
    """A TrainConfig field whose help text (and choices) the CLIs read: every default lives here once."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    """How to train: optimiser, schedule, evaluation and sampling cadence.

    ``python -m gpt.train`` makes one ``--flag`` per field (``--max-iters``, ``--lr``, ...) with
    these defaults and help texts (``cli_fields``).
    """

    max_iters: int = _opt(2000, "optimiser steps")
    stop_at: int | None = _opt(None, "stop after this many steps, leaving a resumable checkpoint (the schedule "
                                     "still plans max_iters; continue with --resume)")
    batch_size: int = _opt(12, "sequences per step")
    lr: float = _opt(1e-3, "peak learning rate")
    min_lr: float | None = _opt(None, "final learning rate (None: lr / 10)")
    warmup_iters: int = _opt(100, "linear warm-up steps")
    schedule: str = _opt("cosine", "after warm-up: cosine decay, or wsd (warmup-stable-decay: hold lr, then "
                                   "a linear decay)", choices=SCHEDULES)
    decay_frac: float = _opt(0.4, "wsd only: the last fraction of the steps, decaying linearly to min_lr")
    weight_decay: float = _opt(0.1, "AdamW weight decay on 2-D weights")
    beta1: float = _opt(0.9, "AdamW beta1 (momentum)")
    beta2: float = _opt(0.99, "AdamW beta2")
    optimizer: str = _opt("adamw", "adamw everywhere, or muon: Muon on the hidden weight matrices (attention, MLP), "
                                   "AdamW (--lr, betas) on embeddings, head, LayerNorms and biases",
                          choices=OPTIMIZERS)
    muon_lr: float = _opt(0.02, "muon only: peak learning rate of the hidden matrices (same schedule as --lr)")
    muon_momentum: float = _opt(0.95, "muon only: momentum of the hidden matrices")
    nesterov: bool = _opt(True, "muon only: Nesterov momentum (true/false)")
    ns_steps: int = _opt(5, "muon only: Newton-Schulz iterations per update")
    grad_clip: float = _opt(1.0, "clip the gradient norm to this (0 = off)")
    eval_interval: int = _opt(250, "evaluate every this many steps")
    eval_iters: int = _opt(50, "batches per evaluation")
    sample_interval: int = _opt(0, "sample every this many steps (0 = no samples while training)")
    sample_tokens: int = _opt(100, "tokens per sample while training")
    seed: int = _opt(0, "random seed (initialisation, batches)")
    device: str = _opt("auto", "auto = cuda, then mps, then cpu", choices=DEVICES)
    compile: bool = _opt(False, "torch.compile the training forward (true/false; pays off on a GPU after "
                                "a warm-up compile of ~a minute)")

    def __post_init__(self) -> None:
        for name in ("max_iters", "batch_size", "eval_interval", "eval_iters"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {v!r}.")
        if self.stop_at is not None and (not isinstance(self.stop_at, int) or isinstance(self.stop_at, bool)
                                         or not 1 <= self.stop_at <= self.max_iters):
            raise ValueError(f"stop_at must be a whole number from 1 to max_iters ({self.max_iters}), "
                             f"got {self.stop_at!r}.")
        for name in ("warmup_iters", "sample_interval", "sample_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {v!r}.")
        lr = float(self.lr)
        if not (lr == lr and 0 < lr <= 1):
            raise ValueError(f"lr must be in (0, 1], got {self.lr!r}; typical values are 1e-4 .. 3e-3.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}.")
        for name in ("beta1", "beta2"):
            b = float(getattr(self, name))
            if not (0 <= b < 1):
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}; "
                                 "AdamW's usual values are 0.8 .. 0.999.")
        if not (0 < float(self.decay_frac) <= 1):
            raise ValueError(f"decay_frac must be in (0, 1], got {self.decay_frac!r}.")
        self._check_muon()
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}.")
        if self.device not in DEVICES:
            raise ValueError(f"device must be auto, cpu, cuda or mps, got {self.device!r}.")

    def _check_muon(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be adamw or muon, got {self.optimizer!r}.")
        mlr = self.muon_lr
        if isinstance(mlr, bool) or not isinstance(mlr, (int, float)) or not 0 < mlr <= 1:
            raise ValueError(f"muon_lr must be in (0, 1], got {mlr!r}; the reference value is 0.02.")
        mom = self.muon_momentum
        if isinstance(mom, bool) or not isinstance(mom, (int, float)) or not 0 <= mom < 1:
            raise ValueError(f"muon_momentum must be in [0, 1), got {mom!r}; the reference value is 0.95.")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}.")
        ns = self.ns_steps
        if not isinstance(ns, int) or isinstance(ns, bool) or not 1 <= ns <= 20:
            raise ValueError(f"ns_steps must be a whole number from 1 to 20, got {ns!r}; the reference uses 5.")

    @property
    def final_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def cli_fields(cls) -> list[dataclasses.Field]:
        """The fields, in order, each with its default and ``metadata['help']`` (and ``'choices'``)."""
        return list(dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


__all__ = ["GPTConfig", "TrainConfig", "SCHEDULES", "OPTIMIZERS", "FAST_RECIPE",
           "PRESETS", "PRESET_NOTES", "preset_config", "ACTIVATIONS",
           "REFERENCE_LADDER", "warmup_for"]
