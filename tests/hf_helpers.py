"""Stand-ins for GPT-2, whose weights cannot be downloaded here: random models saved by ``transformers``."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


def save_random_gpt2(folder: Path, *, n_layer: int = 1, n_head: int = 2, n_embd: int = 32, n_positions: int = 32):
    """Save a seeded random ``transformers.GPT2LMHeadModel`` (full GPT-2 vocabulary) at ``folder`` in the
    Hugging Face layout (config.json + model.safetensors): a stand-in for GPT-2, which cannot be downloaded here."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ref = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                                               n_positions=n_positions))
    ref.save_pretrained(folder, safe_serialization=True)
    return folder
