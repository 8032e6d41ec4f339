"""Every cap the app enforces, in one place, so the README can quote them.

Chosen for a shared 2-vCPU Hugging Face Space: a visitor can train anything from the
bigram to a char-level gpt-small, but no single run can hold the machine for long.
This module imports nothing heavy; ``check_train`` raises ValueError with a message
that says what to change.
"""
from __future__ import annotations

import math
import os

from gpt import tokenizers

# training: the run itself
MIN_ITERS, MAX_ITERS = 10, 5000
MAX_TRAIN_SECONDS = 600  # wall-clock cap: the run stops (model kept) after 10 minutes
MAX_PARAMS = 12_000_000  # gpt-small with the char tokenizer fits; with gpt2 BPE it does not
MAX_BATCH = 64
MAX_BLOCK = 256
MAX_LAYERS = 8
MAX_HEADS = 8
MAX_EMBD = 512
MAX_DROPOUT = 0.5
MIN_LR, MAX_LR = 1e-5, 1e-2
MAX_SEED = 2**31 - 1
MAX_UPLOAD_MB = 10
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # a .txt corpus: checked by the app (train_tab.check_upload_size)
# the largest checkpoint zip the Train tab exports: float32 weights (4 bytes a parameter) and the training state
# (two AdamW moments, 8 bytes a parameter) of a MAX_PARAMS model, plus meta.json, loss.csv and the two reports
MAX_CHECKPOINT_ZIP_BYTES = 12 * MAX_PARAMS + 8 * 2**20
MAX_CHECKPOINT_ZIP_MB = math.ceil(MAX_CHECKPOINT_ZIP_BYTES / 2**20)
MAX_FILE_BYTES = max(MAX_UPLOAD_BYTES, MAX_CHECKPOINT_ZIP_BYTES)  # Gradio's one cap for every upload (launch)
# run files on disk: one run's export is its checkpoint folder and the same again zipped; all sessions' together
# stay under MAX_RUN_DISK_BYTES (the least recently used idle sessions are forgotten to make room)
MAX_RUN_FILES_BYTES = 2 * MAX_CHECKPOINT_ZIP_BYTES
MAX_RUN_DISK_BYTES = 4 * 10**9
# GPT-2 models in the Hugging Face layout (byom), shared read-only by every visitor
MAX_HF_MODELS = 2  # held at once (GPT-2 small: ~0.6 GB resident each)
MAX_HF_PARAMS = 400_000_000  # up to GPT-2 medium (355 M, ~1.4 GB in float32); large/xl are refused
# distinct characters of an upload for the char tokenizer: gpt's own cap (its vocabulary must fit the
# checkpoint loader's 1 MB meta.json, so every download loads again)
MAX_CHAR_VOCAB = tokenizers.MAX_CHAR_VOCAB
EVAL_ITERS = 20  # batches per evaluation while training
EVALS_PER_RUN = 10  # evaluation points drawn on the loss curve
MIN_EVAL_INTERVAL = 10  # short runs are not evaluated at every step (an evaluation costs ~EVAL_ITERS steps)
FINAL_EVAL_BATCHES = 20  # batches for the final val loss / bits per character
SAMPLE_TOKENS = 120  # length of the samples shown while training
UI_UPDATE_S = 0.5  # at most two plot updates per second (evaluations and samples always show)

# inspection and generation
MAX_NEW_TOKENS = 400
MAX_COMPARE_TOKENS = 200
MAX_PROMPT_CHARS = 2000
MAX_KEY_CHARS = 100  # a model key (name) is at most this long; longer ones are refused before any file access
MAX_INSPECT_TOKENS = 64  # longer prompts keep their last 64 tokens in Inspect
# a trace's arrays sent to the browser so head / layer / query switches need no round trip (6 MiB of float32 holds
# every layer of a 6 x 6 model at 64 tokens); a larger model sends the selected layer and fetches the others
MAX_CLIENT_TRACE_BYTES = 6 * 2**20
COMPARE_EVAL_BATCHES = 8  # batches for an untrained/session model's bits per character
TRACE_CACHE_SIZE = 8  # traces kept per session so sliders never re-run the network

# queues: training has its own lane, so Inspect stays responsive while someone trains
TRAIN_CONCURRENCY = 1
MAX_WAITING_RUNS = 8  # training runs waiting for the slot, counted apart from Gradio's queue; one per session
TRAIN_WATCHDOG_S = 10  # a run whose update stream nobody reads for this long stops
INSPECT_CONCURRENCY = 2
QUEUE_MAX_SIZE = 64

# what the process keeps for its visitors (the sweeper in ``expiry`` enforces these)
SESSION_TTL_S = 15 * 60  # an idle session is forgotten after this (env PLAYATTENTION_SESSION_TTL_S)
MAX_SESSIONS = 100  # sessions kept at once; the least recently used idle ones go first
MAX_TRAINED_SESSIONS = 10  # sessions holding trained models (at most 2 each: one per tokenizer)
EXPORT_GRACE_S = 30  # a replaced run's files stay this long, so an answer being delivered stays valid

PRESET_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "dropout")


def session_ttl_s() -> float:
    """Idle seconds before a session is forgotten: PLAYATTENTION_SESSION_TTL_S, else SESSION_TTL_S."""
    try:
        ttl = float(os.environ.get("PLAYATTENTION_SESSION_TTL_S", SESSION_TTL_S))
    except ValueError:
        ttl = SESSION_TTL_S
    return ttl if math.isfinite(ttl) and ttl > 0 else SESSION_TTL_S


def sweep_interval_s() -> float:
    """How often the sweeper looks for expired sessions."""
    return min(30.0, max(0.5, session_ttl_s() / 4))


def _whole(name: str, value, lo: int, hi: int) -> int:
    try:
        x = math.nan if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x) or x != int(x):
        raise ValueError(f"{name} must be a whole number between {lo} and {hi}, got {value!r}.")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {v}.")
    return v


def check_train(*, iters, lr, batch_size, block_size, n_layer, n_head, n_embd, dropout, seed,
                sample_every) -> dict:
    """Validate the Train tab's hyperparameters; return them as clean Python numbers."""
    try:
        lr_f, drop_f = float(lr), float(dropout)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("learning rate and dropout must be numbers.") from None
    if not (math.isfinite(lr_f) and MIN_LR <= lr_f <= MAX_LR):
        raise ValueError(f"learning rate must be between {MIN_LR:g} and {MAX_LR:g}, got {lr!r} "
                         "(1e-3 is a good start).")
    if not (math.isfinite(drop_f) and 0.0 <= drop_f <= MAX_DROPOUT):
        raise ValueError(f"dropout must be between 0 and {MAX_DROPOUT}, got {dropout!r}.")
    return dict(
        iters=_whole("iterations", iters, MIN_ITERS, MAX_ITERS), lr=lr_f, dropout=drop_f,
        batch_size=_whole("batch size", batch_size, 1, MAX_BATCH),
        block_size=_whole("block size", block_size, 2, MAX_BLOCK),
        n_layer=_whole("layers", n_layer, 0, MAX_LAYERS), n_head=_whole("heads", n_head, 0, MAX_HEADS),
        n_embd=_whole("n_embd", n_embd, 8, MAX_EMBD), seed=_whole("seed", seed, 0, MAX_SEED),
        sample_every=_whole("sample every", sample_every, 0, MAX_ITERS),
    )


def check_params(n_params: int, tokenizer: str) -> None:
    """Refuse models too big to train on a shared CPU, saying how to shrink them."""
    if n_params > MAX_PARAMS:
        hint = (" Most of a gpt2-tokenizer model is its 50,257 x n_embd embedding: lower n_embd "
                "or use the char tokenizer.") if tokenizer == "gpt2" else " Lower n_embd or the number of layers."
        raise ValueError(f"this model has {n_params:,} parameters; the limit here is {MAX_PARAMS:,}.{hint}")


def table() -> list[tuple[str, str]]:
    """The caps as (what, limit) rows, for the README and the Train tab."""
    return [
        ("iterations", f"{MIN_ITERS} .. {MAX_ITERS:,}"),
        ("wall time per run", f"{MAX_TRAIN_SECONDS // 60} min (then it stops, model kept)"),
        ("parameters", f"{MAX_PARAMS:,}"), ("batch size", f"1 .. {MAX_BATCH}"), ("block size", f"2 .. {MAX_BLOCK}"),
        ("layers / heads", f"0 .. {MAX_LAYERS} / 0 .. {MAX_HEADS}"), ("n_embd", f"8 .. {MAX_EMBD}"),
        ("dropout", f"0 .. {MAX_DROPOUT}"), ("learning rate", f"{MIN_LR:g} .. {MAX_LR:g}"),
        ("upload", f".txt, UTF-8, up to {MAX_UPLOAD_MB} MB; at most {MAX_CHAR_VOCAB:,} distinct characters "
                   "for the char tokenizer"),
        ("checkpoint zip upload", f"the Train tab's download, up to {MAX_CHECKPOINT_ZIP_MB} MB (weights and "
                                  f"training state of a {MAX_PARAMS:,}-parameter model)"),
        ("Hugging Face GPT-2 models", f"{MAX_HF_MODELS} held at once, shared read-only by all visitors, up to "
                                      f"{MAX_HF_PARAMS:,} parameters each"),
        ("training runs", f"{TRAIN_CONCURRENCY} at once, {MAX_WAITING_RUNS} waiting (one per visitor); "
                          "beyond that: try again later"),
        ("new tokens (generate / compare)", f"{MAX_NEW_TOKENS} / {MAX_COMPARE_TOKENS}"),
        ("prompt", f"{MAX_PROMPT_CHARS:,} characters; Inspect keeps the last {MAX_INSPECT_TOKENS} tokens"),
        ("Inspect's trace in the browser (head / layer / query switches without a round trip)",
         f"{MAX_CLIENT_TRACE_BYTES // 2**20} MiB of float32 arrays; a larger model sends the selected layer, "
         "and another layer is one round trip"),
        ("requests", f"{INSPECT_CONCURRENCY} inspect / generate at once, up to {QUEUE_MAX_SIZE} waiting"),
        ("kept per visitor", f"the latest model per tokenizer, the optimiser state of the latest run (~2x its "
                             f"weights, so Continue training resumes it), an uploaded checkpoint and "
                             f"{TRACE_CACHE_SIZE} traces; freed when the tab "
                             f"closes or after {SESSION_TTL_S // 60} min idle (PLAYATTENTION_SESSION_TTL_S)"),
        ("kept per server", f"{MAX_SESSIONS} sessions; {MAX_TRAINED_SESSIONS} of them with trained models "
                            f"(<= {2 * MAX_TRAINED_SESSIONS} models); run files on disk (checkpoint, training state "
                            f"and their zip, <= {MAX_RUN_FILES_BYTES / 1e6:,.0f} MB a run) <= "
                            f"{MAX_RUN_DISK_BYTES / 1e9:g} GB in all: the least recently used idle sessions are "
                            "forgotten to make room, else a new run is refused until there is room"),
        ("model name", f"a shipped, untrained-*, session-* or checkpoint name, <= {MAX_KEY_CHARS} characters"),
    ]


def markdown() -> str:
    """The caps as a Markdown table."""
    return "\n".join(["| what | limit |", "|---|---|"] + [f"| {what} | {limit} |" for what, limit in table()])
