"""GPT-2-family checkpoints in the Hugging Face layout, mapped onto ``gpt.GPT``. Never unpickle.

    model, tok = gpt.load_pretrained("checkpoints/hf/gpt2")      # a folder: config.json + model.safetensors
    model, tok = gpt.load_pretrained("openai-community/gpt2")    # a Hub repo id (online, or in the HF cache)

GPT-2's ``Conv1D`` layers store their weights as (in, out), the transpose of ``nn.Linear``:
``c_attn``, ``c_proj`` and ``c_fc`` are transposed on load. Tensor names come with the
``transformer.`` prefix (what transformers 5 writes) or without it (the files on the Hub);
the causal-mask buffers ``attn.bias`` / ``attn.masked_bias`` of older files are ignored.
Only ``config.json`` and ``*.safetensors`` are ever read: pickled weights (``.bin``, ``.pt``,
``.ckpt``) can run code when loaded, so they are refused with a message to convert them.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError, safe_open

from .checkpoint import CheckpointError, read_json_object
from .config import GPTConfig
from .model import GPT
from .tokenizers import get_tokenizer

HUB_PAGE = "https://huggingface.co/"  # where a repo's files can be downloaded by hand (named in messages)
HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"  # sharded weights: which tensor lives in which file
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
GPT2_VOCAB = 50257
HF_FOLDER = "checkpoints/hf"  # where the app looks for GPT-2 folders (and where offline users put them)
MAX_CONFIG_BYTES = 1_000_000
HUB_PROBE_TIMEOUT_S = 3.0  # how long to wait for the Hub before calling the machine offline

# HF activation_function -> GPTConfig.activation ("gelu_new" is GPT-2's tanh approximation)
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")
# GPT2Config's defaults, used for keys a config.json leaves out (as transformers does)
DEFAULTS = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
            "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "scale_attn_weights": True, "tie_word_embeddings": True}
# options gpt.GPT has no equivalent for: a true value is refused, naming the key
UNSUPPORTED_TRUE = ("add_cross_attention", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
                    "is_encoder_decoder")
# Conv1D weights: stored (in, out), nn.Linear wants (out, in)
TRANSPOSED = re.compile(r"^h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")
IGNORED = re.compile(r"^h\.\d+\.attn\.(bias|masked_bias)$")  # causal-mask buffers, not weights
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def _name(folder: Path) -> str:
    """How messages name a folder: its last component (no absolute paths in messages)."""
    return repr(folder.name or str(folder))


def _read_config(folder: Path) -> dict[str, Any]:
    cpath = folder / HF_CONFIG
    if not cpath.is_file():
        raise CheckpointError(f"folder {_name(folder)} has no {HF_CONFIG}: a Hugging Face model folder holds "
                              f"{HF_CONFIG} and {HF_WEIGHTS} (save it with save_pretrained(safe_serialization=True)).")
    return read_json_object(cpath, MAX_CONFIG_BYTES, f"{HF_CONFIG} in {_name(folder)}", "a model config")


def gpt_config_from_hf(cfg: dict[str, Any]) -> GPTConfig:
    """The GPTConfig equal to a GPT-2 ``config.json``; what gpt.GPT cannot represent is refused by name."""
    model_type = cfg.get("model_type")
    if model_type != "gpt2":
        raise CheckpointError(f"config.json has model_type {model_type!r}: playAttention loads GPT-2-family "
                              "models only (model_type 'gpt2', e.g. gpt2, gpt2-medium, distilgpt2).")
    archs = cfg.get("architectures") or []
    other = [a for a in archs if a not in ARCHITECTURES] if isinstance(archs, list) else [archs]
    if other:
        raise CheckpointError(f"config.json names the architecture {other[0]!r}; playAttention loads "
                              f"{' or '.join(ARCHITECTURES)} (a language model head), not that one.")
    for key in UNSUPPORTED_TRUE:
        if cfg.get(key):
            raise CheckpointError(f"config.json sets {key} = {cfg[key]!r}, which playAttention's GPT does not "
                                  "implement; only plain GPT-2 decoders can be loaded.")
    c = {k: cfg.get(k, default) if cfg.get(k) is not None else default for k, default in DEFAULTS.items()}
    if c["n_inner"] is not None and c["n_inner"] != 4 * c["n_embd"]:
        raise CheckpointError(f"config.json sets n_inner = {c['n_inner']!r}; playAttention's MLP is 4 x n_embd "
                              f"({4 * c['n_embd']}) wide, so this model cannot be represented.")
    act = c["activation_function"]
    if act not in ACTIVATIONS:
        raise CheckpointError(f"config.json sets activation_function = {act!r}; supported: "
                              f"{', '.join(ACTIVATIONS)}.")
    if c["vocab_size"] != GPT2_VOCAB:
        raise CheckpointError(f"config.json has vocab_size {c['vocab_size']!r}, but the only tokenizer for "
                              f"Hugging Face models here is GPT-2's BPE with {GPT2_VOCAB} tokens.")
    try:
        return GPTConfig(vocab_size=c["vocab_size"], block_size=c["n_positions"], n_layer=c["n_layer"],
                         n_head=c["n_head"], n_embd=c["n_embd"], dropout=0.0, bias=True,
                         activation=ACTIVATIONS[act], layer_norm_eps=c["layer_norm_epsilon"],
                         attn_scale=None if c["scale_attn_weights"] else 1.0,
                         tie_weights=bool(c["tie_word_embeddings"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"config.json describes a model playAttention cannot build: {e}") from None


def read_hf_config(folder: str | Path) -> GPTConfig:
    """Check a folder's config.json (and that safetensors weights exist) without reading any weights."""
    folder = Path(folder)
    config = gpt_config_from_hf(_read_config(folder))
    _weight_files(folder)
    return config


def _weight_files(folder: Path) -> list[Path]:
    """model.safetensors, or the shards its index names; pickled weights only: refused."""
    if (folder / HF_WEIGHTS).is_file():
        return [folder / HF_WEIGHTS]
    if (folder / HF_INDEX).is_file():
        try:
            index = json.loads((folder / HF_INDEX).read_bytes()[:MAX_CONFIG_BYTES * 20].decode("utf-8"))
            names = sorted(set(index["weight_map"].values()))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise CheckpointError(f"{HF_INDEX} in {_name(folder)} is not a valid safetensors index.") from None
        bad = [n for n in names if not isinstance(n, str) or not re.match(r"^[\w.-]+\.safetensors$", n)]
        if bad or not names:
            raise CheckpointError(f"{HF_INDEX} in {_name(folder)} names invalid weight files {bad[:3]}.")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise CheckpointError(f"folder {_name(folder)} lacks the weight shard(s) {missing[:3]} its index names.")
        return [folder / n for n in names]
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES) if folder.is_dir() else []
    if pickled:
        raise CheckpointError(
            f"folder {_name(folder)} holds only pickled weights ({', '.join(pickled[:3])}). playAttention never "
            "loads pickle files (loading one can run any code). Convert it to safetensors where you trust it, e.g. "
            "GPT2LMHeadModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True), "
            f"so that the folder holds {HF_WEIGHTS}.")
    raise CheckpointError(f"folder {_name(folder)} has no {HF_WEIGHTS}.")


def _read_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors files (a JSON header + raw bytes: no code runs), prefix removed,
    float32, Conv1D weights transposed to (out, in) as each is read (one copy alive at a time)."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    name = key[len("transformer."):] if key.startswith("transformer.") else key
                    if IGNORED.match(name) or (name in state and not key.startswith("transformer.")):
                        continue
                    t = f.get_tensor(key)
                    if t.is_floating_point():
                        # always a private copy: a tensor left on the file's memory map keeps all of it mapped
                        t = (t.t().float().contiguous() if TRANSPOSED.match(name) and t.dim() == 2
                             else t.to(torch.float32, copy=True))
                    state[name] = t
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path.name} is not a complete safetensors file ({str(e)[:120]}); it may be "
                                  "truncated: download or save it again.") from None
    return state


def _convert(state: dict[str, torch.Tensor], model: GPT) -> dict[str, torch.Tensor]:
    """HF tensors (already transposed, float32) -> gpt.GPT's state dict: names and shapes checked."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tied = model.config.tie_weights
    if tied:
        expected.pop("lm_head.weight")
        state.pop("lm_head.weight", None)  # tied to wte: transformers ties it the same way
    unexpected = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"the weights lack {len(missing)} tensor(s) the config needs, e.g. {missing[:3]}; "
                              "the file does not belong to this config.json.")
    if unexpected:
        raise CheckpointError(f"the weights hold tensor(s) a GPT-2 language model does not have, e.g. "
                              f"{unexpected[:3]}; only GPT2LMHeadModel / GPT2Model files can be loaded.")
    out = {}
    for name, t in state.items():
        if not t.is_floating_point():
            raise CheckpointError(f"tensor {name} has dtype {t.dtype}; GPT-2 weights are floating point.")
        if tuple(t.shape) != expected[name]:
            stored = tuple(reversed(t.shape)) if TRANSPOSED.match(name) else tuple(t.shape)
            want = tuple(reversed(expected[name])) if TRANSPOSED.match(name) else expected[name]
            raise CheckpointError(f"tensor {name} has shape {stored} but config.json (n_embd "
                                  f"{model.config.n_embd}, n_positions {model.config.block_size}) needs {want}.")
        out[name] = t
    if tied:
        out["lm_head.weight"] = out["wte.weight"]
    return out


def n_params(config: GPTConfig) -> int:
    """Parameters of a GPT-2 of this shape (tied head counted once), known before any weight is read."""
    C, L = config.n_embd, config.n_layer
    head = 0 if config.tie_weights else config.vocab_size * C
    return config.vocab_size * C + config.block_size * C + L * (12 * C * C + 13 * C) + 2 * C + head


def _check_size(config: GPTConfig, max_params: int | None, what: str) -> None:
    if max_params is not None and n_params(config) > max_params:
        raise CheckpointError(f"{what} has {n_params(config):,} parameters; at most {max_params:,} can be "
                              "loaded here.")


def load_hf_folder(folder: str | Path, device: str | torch.device = "cpu", *, max_params: int | None = None):
    """``(model, tokenizer)`` from a local folder holding config.json + model.safetensors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"no folder {_name(folder)}: give a folder holding {HF_CONFIG} and {HF_WEIGHTS}.")
    config = gpt_config_from_hf(_read_config(folder))
    _check_size(config, max_params, f"the model in {_name(folder)}")
    files = _weight_files(folder)
    with torch.device("meta"):  # no random init of weights that are about to be replaced
        model = GPT(config)
    state = _convert(_read_tensors(files), model)
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_weights:
        model.lm_head.weight = model.wte.weight
    model.to(device).eval()
    return model, get_tokenizer("gpt2")


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Can a TCP connection to the Hub be opened within ``timeout`` s? (DNS included, in a thread:
    huggingface_hub itself retries for ~25 s before it gives up on an offline machine.)"""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct connection says nothing: let huggingface_hub try
    url = urlparse(constants.ENDPOINT)
    ok = []

    def probe():
        try:
            socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                     timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def download_hf(repo_id: str, *, max_params: int | None = None) -> Path:
    """The local folder holding ``repo_id``'s config.json and model.safetensors (only those two files),
    downloaded into the Hugging Face cache, or taken from it when the Hub cannot be reached.
    The config is checked (GPT-2? at most ``max_params``?) before the weights are downloaded."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HFValidationError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    local = f"{HF_FOLDER}/{repo_id.rsplit('/', 1)[-1]}"
    offline = not _hub_reachable()
    paths = []
    for filename in (HF_CONFIG, HF_WEIGHTS):
        try:
            paths.append(Path(hf_hub_download(repo_id, filename, local_files_only=offline, etag_timeout=10)))
            if filename == HF_CONFIG:  # refuse another architecture or a too large model before its weights
                _check_size(gpt_config_from_hf(_read_config(paths[0].parent)), max_params, repr(repo_id))
        except LocalEntryNotFoundError:
            raise CheckpointError(
                f"cannot fetch {repo_id!r}: the Hugging Face Hub is unreachable (offline?) and the model is not "
                f"in the local cache. Put its {HF_CONFIG} and {HF_WEIGHTS} (from {HUB_PAGE}{repo_id}) "
                f"into the folder {local}/ and load that folder.") from None
        except GatedRepoError:
            raise CheckpointError(f"{repo_id!r} is a gated repo on the Hub: accept its terms there and log in "
                                  f"(hf auth login), or put its files into {local}/.") from None
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise CheckpointError(f"there is no model {repo_id!r} on the Hugging Face Hub (or it is private); "
                                  "check the name, e.g. 'openai-community/gpt2'.") from None
        except EntryNotFoundError:
            raise CheckpointError(
                f"{repo_id!r} on the Hub has no {filename}" + (
                    " (only pickled weights?); playAttention never loads pickle files: convert it to "
                    "safetensors where you trust it." if filename == HF_WEIGHTS else ".")) from None
        except HFValidationError:
            raise CheckpointError(f"{repo_id!r} is not a valid Hub repo id (like 'openai-community/gpt2').") from None
        except OSError as e:  # network errors while downloading
            raise CheckpointError(f"downloading {repo_id!r} failed ({type(e).__name__}); try again, or put "
                                  f"its {HF_CONFIG} and {HF_WEIGHTS} into {local}/.") from None
    return paths[0].parent


def load_pretrained(path_or_repo_id: str | Path, device: str | torch.device = "cpu", *,
                    max_params: int | None = None):
    """``(model, tokenizer)`` for a GPT-2-family model: a local folder (config.json + model.safetensors)
    or a Hugging Face Hub repo id. Model in eval mode, float32; tokenizer: GPT-2's offline BPE.
    ``max_params`` refuses a larger model from its config, before any weight is read or downloaded."""
    s = str(path_or_repo_id)
    path = Path(s)
    if path.exists() or not REPO_ID.match(s) or s in (".", ".."):
        if path.is_file():
            raise CheckpointError(f"{_name(path)} is a file; give the folder that holds {HF_CONFIG} and "
                                  f"{HF_WEIGHTS}.")
        return load_hf_folder(path, device, max_params=max_params)
    return load_hf_folder(download_hf(s, max_params=max_params), device, max_params=max_params)


__all__ = ["load_pretrained", "load_hf_folder", "read_hf_config", "gpt_config_from_hf", "download_hf", "n_params",
           "HF_FOLDER", "HF_CONFIG", "HF_WEIGHTS"]
