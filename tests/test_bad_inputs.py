"""Bad input gets a clear message and never a traceback: one table across the command line,
the Python API and every app endpoint.

Each row is (surface, case id, call, expected message fragment). ``call(t)`` returns the text
the user sees, and checks the outcome's form on the way:

* cli: ``python -m gpt.sample`` / ``python -m gpt.train``, run through their ``main``. An error
  must exit with 2 (``cli``); a case that is fine, such as an empty prompt, must exit with 0
  (``cli_ok``). The text is stderr + stdout.
* api: the documented exception, whose type is checked (``raises``), or a one-line summary of
  what came back (``generate``).
* app: the gradio_client ``AppError`` (``app_error``), the output plus any gr.Info / gr.Warning
  shown (``app_ok``), or, for what gradio_client cannot send (NaN, a server-side path, a 50 MB
  body), the answer to a raw HTTP request (``raw_call``, ``raw_upload``).

A case passes when the fragment is in that text and no traceback is.
"""
from __future__ import annotations

import pickle

import pytest

from bad_input_surfaces import (PROMPT, ROOT, TINY, TRAVERSAL, Payload, Surfaces, case, raises,
                                surfaces_fixture, table_test)
from gpt import CheckpointError, DataError, GPTConfig, UnknownCharactersError, load_checkpoint, load_text
from gpt import save_checkpoint
from gpt.checkpoint import user_checkpoint_path
from explainer import trace_prompt
from explainer.ui import limits
from gradio_client import handle_file


def _sparse(t, size: int) -> str:
    """A file of ``size`` zero bytes (sparse: no disk used)."""
    path = t.root / "over-cap.txt"
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


CASES = [
    # --- command line: python -m gpt.sample ---
    case("cli", "empty-prompt", lambda t: t.sample("--prompt", "", ok=True), "starting from the start token ↵"),
    case("cli", "blank-prompt", lambda t: t.sample("--prompt", "  \t ", ok=True), "starting from the start token ↵"),
    case("cli", "gpt2-empty-prompt", lambda t: t.cli_ok("gpt.sample", "--checkpoint", t.gpt2_ck, "--prompt", "",
                                                      "--max-new-tokens", 3), "start token <|endoftext|>"),
    case("cli", "accented", lambda t: t.sample("--prompt", "café"), "'é'. Remove them"),
    case("cli", "emoji", lambda t: t.sample("--prompt", "hi 🙂"), "'🙂'"),
    case("cli", "rtl-mark", lambda t: t.sample("--prompt", "\u200fROMEO"), r"'\u200f'"),
    case("cli", "100k-prompt", lambda t: t.sample("--prompt", "a" * 100_000, ok=True),
         "prompt cropped to its last 16 tokens"),
    case("cli", "temperature-negative", lambda t: t.sample("--temperature", -1), "temperature must be >= 0"),
    case("cli", "temperature-nan", lambda t: t.sample("--temperature", "nan"), "temperature must be >= 0"),
    case("cli", "temperature-1e6", lambda t: t.sample("--temperature", 1e6), "too large; use at most 100"),
    case("cli", "temperature-not-a-number", lambda t: t.sample("--temperature", "hot"), "invalid float value"),
    case("cli", "top-k-0", lambda t: t.sample("--top-k", 0), "top_k must be a whole number >= 1"),
    case("cli", "top-k-above-vocab", lambda t: t.sample("--prompt", PROMPT, "--top-k", 10**6, ok=True), PROMPT),
    case("cli", "top-p-0", lambda t: t.sample("--top-p", 0), "top_p must be in (0, 1]"),
    case("cli", "top-p-above-1", lambda t: t.sample("--top-p", 1.5), "top_p must be in (0, 1]"),
    case("cli", "max-new-tokens-0", lambda t: t.sample("--max-new-tokens", 0), "max_new_tokens must be"),
    case("cli", "max-new-tokens-huge", lambda t: t.sample("--max-new-tokens", 10**9), "the limit is 5000"),
    case("cli", "checkpoint-missing", lambda t: t.cli("gpt.sample", "--checkpoint", t.no_meta),
         "meta.json is missing"),
    case("cli", "checkpoint-truncated", lambda t: t.cli("gpt.sample", "--checkpoint", t.damaged["truncated"]),
         "corrupt or truncated"),
    case("cli", "checkpoint-pickle", lambda t: t.cli("gpt.sample", "--checkpoint", t.pickle_file),
         "is a file; a checkpoint is a folder"),
    case("cli", "checkpoint-traversal", lambda t: t.cli("gpt.sample", "--checkpoint", TRAVERSAL),
         "a checkpoint is a folder"),
    # --- command line: python -m gpt.train ---
    case("cli", "block-size-above-corpus", lambda t: t.train("--data", t.file("short"), "--block-size", 256),
         "too short for block_size 256"),
    case("cli", "heads-do-not-divide", lambda t: t.cli("gpt.train", "--n-embd", 130, "--out", t.root / "o"),
         "divisible by n_head"),
    case("cli", "empty-corpus", lambda t: t.train("--data", t.file("empty")), "is empty"),
    case("cli", "char-vocabulary-over-the-cap", lambda t: t.train("--data", t.many_chars()),
         "the corpus has 200,001 distinct characters; the char tokenizer takes at most 50,000"),
    case("cli", "one-byte-corpus", lambda t: t.train("--data", t.file("one-byte")), "too short for block_size"),
    case("cli", "png-corpus", lambda t: t.train("--data", t.file("png")), "looks binary"),
    case("cli", "latin1-corpus", lambda t: t.train("--data", t.file("latin1")), "is not UTF-8 text"),
    case("cli", "50MB-corpus", lambda t: t.train("--data", t.root / "big.txt"), "the limit is 50 MB"),
    case("cli", "missing-corpus", lambda t: t.train("--data", t.root / "nope.txt"), "no such corpus file"),
    case("cli", "zero-iterations", lambda t: t.cli("gpt.train", "--max-iters", 0, "--out", t.root / "o"),
         "max_iters must be a whole number >= 1"),
    case("cli", "nan-learning-rate", lambda t: t.train("--lr", "nan"), "lr must be in (0, 1]"),
    case("cli", "beta1-is-1", lambda t: t.train("--beta1", 1), "beta1 must be in [0, 1)"),
    case("cli", "decay-frac-0", lambda t: t.train("--schedule", "wsd", "--decay-frac", 0),
         "decay_frac must be in (0, 1]"),
    case("cli", "unknown-schedule", lambda t: t.train("--schedule", "step"), "invalid choice: 'step'"),
    case("cli", "out-is-a-file", lambda t: t.cli("gpt.train", "--out", t.file("short")), "--out needs a folder"),
    case("cli", "init-from-pickle", lambda t: t.train("--init-from", t.pickle_file), "a checkpoint is a folder"),
    # --- Python API: generation ---
    case("api", "empty-prompt", lambda t: t.generate(""), "start token used: True"),
    case("api", "blank-prompt", lambda t: t.generate(" \n\t "), "start token used: True; cropped: False; 1 prompt"),
    case("api", "accented", lambda t: raises(UnknownCharactersError, lambda: t.generate("naïve")), "'ï'"),
    case("api", "emoji", lambda t: raises(UnknownCharactersError, lambda: t.generate("🙂")), "'🙂'"),
    case("api", "nul", lambda t: raises(UnknownCharactersError, lambda: t.generate("a\x00b")), r"'\x00'"),
    case("api", "rtl-mark", lambda t: raises(UnknownCharactersError, lambda: t.generate("\u202eab")), r"'\u202e'"),
    case("api", "100k-prompt", lambda t: t.generate("a" * 100_000), "cropped: True; 16 prompt tokens"),
    case("api", "gpt2-endoftext-typed", lambda t: t.generate("<|endoftext|>", model="gpt2"),
         "start token used: False; cropped: False; 7 prompt tokens"),
    case("api", "temperature-0-is-greedy", lambda t: t.greedy(), "give the same text: True"),
    case("api", "temperature-negative", lambda t: raises(ValueError, lambda: t.generate(temperature=-0.5)),
         "temperature must be >= 0 (0 = greedy)"),
    case("api", "temperature-nan", lambda t: raises(ValueError, lambda: t.generate(temperature=float("nan"))),
         "temperature must be >= 0"),
    case("api", "temperature-1e6", lambda t: raises(ValueError, lambda: t.generate(temperature=1e6)),
         "too large"),
    case("api", "top-k-0", lambda t: raises(ValueError, lambda: t.generate(top_k=0)), "leave it unset"),
    case("api", "top-k-above-vocab", lambda t: t.generate(top_k=10**6), "5 new tokens"),
    case("api", "top-p-0", lambda t: raises(ValueError, lambda: t.generate(top_p=0.0)), "top_p must be in (0, 1]"),
    case("api", "top-p-above-1", lambda t: raises(ValueError, lambda: t.generate(top_p=1.01)), "top_p must be"),
    case("api", "max-new-tokens-0", lambda t: raises(ValueError, lambda: t.generate(max_new_tokens=0)),
         "max_new_tokens must be a whole number >= 1"),
    case("api", "max-new-tokens-huge", lambda t: raises(ValueError, lambda: t.generate(max_new_tokens=10**9)),
         "the limit is 5000"),
    case("api", "trace-unknown-characters", lambda t: raises(
        UnknownCharactersError, lambda: trace_prompt(t.char, t.char_tok, "ça")), "'ç'"),
    # --- Python API: models, data and checkpoints ---
    case("api", "block-size-above-corpus", lambda t: raises(DataError, lambda: t.train_api(
        "To be or not to be. " * 5, block_size=256, n_layer=1, n_head=1, n_embd=16)), "too short for block_size"),
    case("api", "heads-do-not-divide", lambda t: raises(ValueError, lambda: GPTConfig(n_embd=130, n_head=4)),
         "try n_embd = 128"),
    case("api", "no-heads-with-layers", lambda t: raises(ValueError, lambda: GPTConfig(n_layer=2, n_head=0)),
         "n_head must be at least 1"),
    case("api", "png-corpus", lambda t: raises(DataError, lambda: load_text(t.file("png"))), "looks binary"),
    case("api", "50MB-corpus", lambda t: raises(DataError, lambda: load_text(t.root / "big.txt")), "limit is 50"),
    case("api", "checkpoint-truncated", lambda t: raises(CheckpointError, lambda: load_checkpoint(
        t.damaged["truncated"])), "corrupt or truncated (SHA-256 mismatch)"),
    case("api", "checkpoint-wrong-config", lambda t: raises(CheckpointError, lambda: load_checkpoint(
        t.damaged["wrong-config"])), "weights do not match its config"),
    case("api", "checkpoint-wrong-vocab", lambda t: raises(CheckpointError, lambda: load_checkpoint(
        t.damaged["wrong-vocab"])), "the vocabulary does not match"),
    case("api", "checkpoint-pickle-weights", lambda t: raises(CheckpointError, lambda: load_checkpoint(
        t.damaged["pickle-weights"])), "not a valid safetensors file"),
    case("api", "checkpoint-pickle-file", lambda t: raises(CheckpointError, lambda: load_checkpoint(
        t.pickle_file)), "is a file; a checkpoint is a folder"),
    case("api", "load-traversal", lambda t: raises(CheckpointError, lambda: load_checkpoint(TRAVERSAL)),
         "a checkpoint is a folder"),
    case("api", "save-traversal", lambda t: raises(CheckpointError, lambda: user_checkpoint_path(
        "../../etc/passwd")), "invalid checkpoint name"),
    case("api", "save-over-a-file", lambda t: raises(CheckpointError, lambda: save_checkpoint(
        t.char, t.char_tok, t.file("short"))), "is a file; a checkpoint is a folder"),
    # --- app: /inspect ---
    case("app", "inspect-empty-prompt", lambda t: t.app_error("/inspect", *t.inspect("")), "nothing to inspect"),
    case("app", "inspect-blank-prompt", lambda t: t.app_error("/inspect", *t.inspect(" \n ")), "nothing to inspect"),
    case("app", "inspect-emoji", lambda t: t.app_error("/inspect", *t.inspect("héllo ☃")),
         "not in this model's vocabulary"),
    case("app", "inspect-nul", lambda t: t.app_error("/inspect", *t.inspect("ROMEO\x00")), r"'\x00'"),
    case("app", "inspect-100k-prompt", lambda t: t.app_error("/inspect", *t.inspect("a" * 100_000)),
         "the prompt has 100,000 characters; the limit is 2,000"),
    case("app", "inspect-gpt2-endoftext-typed", lambda t: t.app_ok("/inspect", *t.inspect(
        "<|endoftext|>", "untrained-gpt2")), "· 7 tokens ·"),
    case("app", "inspect-bad-layer", lambda t: t.app_error("/inspect", *t.inspect(layer="top")),
         "layer must be a whole number >= 0"),
    case("app", "inspect-bad-scale", lambda t: t.app_error("/inspect", *t.inspect(scale="×3")),
         "Attention scale (relative to 1/√d_k) must be one of: ×0.5, ×1, ×2, unscaled; got '×3'"),
    case("app", "inspect-traversal-model", lambda t: t.app_error("/inspect", *t.inspect(model="../../etc/passwd")),
         "unknown model '../../etc/passwd'"),
    # --- app: /generate ---
    case("app", "generate-empty-prompt", lambda t: t.app_ok("/generate", *t.gen_args("")),
         "the model starts from its start token"),
    case("app", "generate-blank-prompt", lambda t: t.app_ok("/generate", *t.gen_args("   ")),
         "the model starts from its start token"),
    case("app", "generate-untrained-session-model", lambda t: t.app_error("/generate", *t.gen_args(
        model="session-char")), "has not trained a char model yet"),
    case("app", "generate-temperature-negative", lambda t: t.app_error("/generate", *t.gen_args(temperature=-1)),
         "Temperature (0 = greedy) must be a number between 0 and 2, got -1"),
    case("app", "generate-temperature-1e6", lambda t: t.app_error("/generate", *t.gen_args(temperature=1e6)),
         "Temperature (0 = greedy) must be a number between 0 and 2"),
    case("app", "generate-temperature-nan", lambda t: t.raw_call("generate", list(t.gen_args(
        temperature=float("nan")))), "Temperature (0 = greedy) must be a number between 0 and 2, got nan"),
    case("app", "generate-temperature-text", lambda t: t.app_error("/generate", *t.gen_args(temperature="hot")),
         "must be a number between 0 and 2, got 'hot'"),
    case("app", "generate-top-k-0-is-off", lambda t: t.app_ok("/generate", *t.gen_args(top_k=0)), PROMPT),
    case("app", "generate-top-k-above-vocab", lambda t: t.app_ok("/generate", *t.gen_args(top_k=100)), PROMPT),
    case("app", "generate-top-k-above-cap", lambda t: t.app_error("/generate", *t.gen_args(top_k=10**6)),
         "Top-k (0 = off) must be a number between 0 and 100"),
    case("app", "generate-top-p-0", lambda t: t.app_error("/generate", *t.gen_args(top_p=0)),
         "Top-p (1 = off) must be a number between 0.01 and 1"),
    case("app", "generate-top-p-above-1", lambda t: t.app_error("/generate", *t.gen_args(top_p=2)),
         "Top-p (1 = off) must be a number between 0.01 and 1"),
    case("app", "generate-max-new-tokens-0", lambda t: t.app_error("/generate", *t.gen_args(n=0)),
         "New tokens must be a number between 1 and 400"),
    case("app", "generate-max-new-tokens-huge", lambda t: t.app_error("/generate", *t.gen_args(n=10**9)),
         "New tokens must be a number between 1 and 400"),
    case("app", "generate-seed-negative", lambda t: t.app_error("/generate", *t.gen_args(seed=-5)),
         "Seed must be a number between 0 and 2147483647"),
    # --- app: /compare ---
    case("app", "compare-100k-prompt", lambda t: t.app_error("/compare", "a" * 100_000, 0, 0.8, 10),
         "the limit is 2,000"),
    case("app", "compare-new-tokens-0", lambda t: t.app_error("/compare", PROMPT, 0, 0.8, 0),
         "New tokens must be a number between 1 and 200"),
    # --- app: /train and uploads ---
    case("app", "train-layers-above-cap", lambda t: t.app_error("/train", **t.train_app(n_layer=9)),
         "Layers must be a number between 0 and 8"),
    case("app", "train-heads-above-cap", lambda t: t.app_error("/train", **t.train_app(n_head=16, n_embd=64)),
         "Heads must be a number between 0 and 8"),
    case("app", "train-n-embd-above-cap", lambda t: t.app_error("/train", **t.train_app(n_embd=4096)),
         "n_embd must be a number between 8 and 512"),
    case("app", "train-heads-do-not-divide", lambda t: t.app_error("/train", **t.train_app(n_head=3, n_embd=32)),
         "n_embd (32) must be divisible by n_head (3)"),
    case("app", "train-no-heads-with-layers", lambda t: t.app_error("/train", **t.train_app(n_layer=2, n_head=0)),
         "n_head must be at least 1"),
    case("app", "train-too-many-parameters", lambda t: t.app_error("/train", **t.train_app(
        tokenizer="gpt2", n_layer=8, n_head=8, n_embd=512, block_size=256)), "parameters; the limit here is"),
    case("app", "train-absurd-learning-rate", lambda t: t.app_error("/train", **t.train_app(lr=5.0)),
         "learning rate must be between"),
    case("app", "train-iterations-above-cap", lambda t: t.app_error("/train", **t.train_app(iters=10**9)),
         "Iterations must be a number between 10 and 5000"),
    case("app", "train-no-upload", lambda t: t.app_error("/train", **t.train_app("My uploaded .txt")),
         "choose a .txt file"),
    case("app", "upload-block-size-above-corpus", lambda t: t.upload("short", block_size=256),
         "too short for block_size 256"),
    case("app", "upload-empty", lambda t: t.upload("empty"), "is empty"),
    case("app", "upload-one-byte", lambda t: t.upload("one-byte"), "too short for block_size"),
    case("app", "upload-png-bytes", lambda t: t.upload("png"), "looks binary"),
    case("app", "upload-latin1", lambda t: t.upload("latin1"), "is not UTF-8 text"),
    # Gradio's one upload cap is the largest checkpoint zip (limits.MAX_FILE_BYTES); the app caps a .txt at 10 MB
    case("app", "upload-50MB-txt", lambda t: t.app_error(
        "/train", **t.train_app("My uploaded .txt", handle_file(str(t.root / "big.txt")))),
         "big.txt is 50.0 MB; uploads are limited to 10 MB"),
    case("app", "upload-over-the-server-cap", lambda t: t.raw_upload(_sparse(t, limits.MAX_FILE_BYTES + 1)),
         f"413 File size exceeded maximum allowed size of {limits.MAX_FILE_BYTES} bytes"),
    case("app", "upload-server-side-path", lambda t: t.raw_call("train", [
        "My uploaded .txt", {"path": str(ROOT / "requirements.txt"), "meta": {"_type": "gradio.FileData"}},
        "char", "bigram", *TINY.values()]), "it was not uploaded by a user"),
    case("app", "export-before-training", lambda t: t.app_ok("/export"), "Nothing to stop or download yet"),
]


t = surfaces_fixture(Surfaces, "bad-inputs")


def test_the_table_covers_every_surface():
    surfaces = {p.values[0] for p in CASES}
    assert surfaces == {"cli", "api", "app"} and len(CASES) >= 40
    assert len({p.id for p in CASES}) == len(CASES)


test_bad_input_gets_a_specific_message = table_test(CASES)


def test_pickle_payloads_never_run(t, tmp_path):
    marker = tmp_path / "PWNED"
    pickle.loads(pickle.dumps(Payload(marker)))  # the payload is live: unpickling it runs it
    assert marker.read_text() == "ran"
    assert not t.marker.exists()  # the table's pickle cases ran nothing either
    for path in (t.damaged["pickle-weights"], t.pickle_file):
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
        t.cli("gpt.sample", "--checkpoint", path)
    t.train("--init-from", t.pickle_file)
    assert not t.marker.exists()

