"""playAttention's core: a small, readable GPT, its tokenizers, data, trainer and checkpoints."""
from .checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from .config import PRESETS, GPTConfig, TrainConfig, preset_config
from .data import DataError, TokenData, load_text, load_tiny_shakespeare
from .hf import load_pretrained
from .model import GPT, AttentionTrace, ModelTrace
from .sampling import next_token_probs, sample_next
from .tokenizers import CharTokenizer, GPT2Tokenizer, UnknownCharactersError, get_tokenizer
from .trainer import Trainer, TrainEvent, TrainingDiverged

__all__ = [
    "GPT", "GPTConfig", "TrainConfig", "PRESETS", "preset_config", "AttentionTrace", "ModelTrace",
    "get_tokenizer", "CharTokenizer", "GPT2Tokenizer", "UnknownCharactersError",
    "TokenData", "load_text", "load_tiny_shakespeare", "DataError",
    "Trainer", "TrainEvent", "TrainingDiverged", "next_token_probs", "sample_next",
    "load_checkpoint", "save_checkpoint", "list_checkpoints", "CheckpointError", "load_pretrained",
]
