"""Corpora and batches: Tiny Shakespeare (cached, hash-checked) or any text of the user's.

The text is split 90/10 into train/val by characters before tokenizing (as nanoGPT
does), so char and BPE models are validated on exactly the same characters.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TINY_SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_BYTES = 1_115_394


class DataError(ValueError):
    """A corpus could not be used; the message says why and what to do."""


def cache_dir() -> Path:
    """Where downloaded data lives: $PLAYATTENTION_CACHE, else ~/.cache/playattention."""
    root = os.environ.get("PLAYATTENTION_CACHE") or Path.home() / ".cache" / "playattention"
    return Path(root)


def tiny_shakespeare_path() -> Path:
    return cache_dir() / "tinyshakespeare" / "input.txt"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_tiny_shakespeare(download: bool = True) -> str:
    """The corpus from the cache; on first use, downloaded, hash-checked and cached."""
    path = tiny_shakespeare_path()
    if path.is_file():
        data = path.read_bytes()
        if _sha256(data) == TINY_SHAKESPEARE_SHA256:
            return data.decode("utf-8")
        if not download:
            raise DataError(f"{path} is not Tiny Shakespeare (wrong SHA-256). Delete it or replace it "
                            f"with the file from {TINY_SHAKESPEARE_URL}.")
    if not download:
        raise DataError(f"Tiny Shakespeare is not cached. Put input.txt at {path} "
                        f"(from {TINY_SHAKESPEARE_URL}).")
    try:
        with urllib.request.urlopen(TINY_SHAKESPEARE_URL, timeout=30) as r:
            data = r.read(TINY_SHAKESPEARE_BYTES + 1)
    except OSError as e:
        raise DataError(
            f"Could not download Tiny Shakespeare ({e}). If this machine is offline, put the file "
            f"at {path} (sha256 {TINY_SHAKESPEARE_SHA256[:16]}...), or set PLAYATTENTION_CACHE "
            "to a folder holding tinyshakespeare/input.txt."
        ) from None
    if _sha256(data) != TINY_SHAKESPEARE_SHA256:
        raise DataError("The downloaded Tiny Shakespeare does not match its SHA-256; not saved. Try again later.")
    atomic_write_bytes(path, data)
    return data.decode("utf-8")


MAX_CORPUS_BYTES = 50_000_000


def decode_text(data: bytes, source: str = "the file") -> str:
    """Bytes -> text, with a clear error for empty, binary or non-UTF-8 input."""
    if not data.strip():
        raise DataError(f"{source} is empty: a corpus needs some text.")
    if b"\x00" in data[:8192]:
        raise DataError(f"{source} looks binary (it contains NUL bytes): upload a plain-text .txt file.")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is not text
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is not UTF-8 text (bad byte at position {e.start}): "
                        "save it as UTF-8 and try again.") from None


def load_text(source: str | os.PathLike | None = None) -> str:
    """The corpus: None or 'shakespeare' -> Tiny Shakespeare; a path -> that file's text."""
    if source is None or str(source) in ("shakespeare", "tinyshakespeare"):
        return load_tiny_shakespeare()
    path = Path(source)
    if not path.is_file():
        raise DataError(f"no such corpus file: {path}")
    if path.stat().st_size > MAX_CORPUS_BYTES:
        raise DataError(f"{path.name} is {path.stat().st_size / 1e6:.0f} MB; the limit is "
                        f"{MAX_CORPUS_BYTES / 1e6:.0f} MB. Use a smaller excerpt.")
    return decode_text(path.read_bytes(), path.name)


def _encode(tokenizer, text: str) -> torch.Tensor:
    if getattr(tokenizer, "name", "") == "char":  # vectorised: 1M characters in ~50 ms
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.full(max(map(ord, tokenizer.chars)) + 1, -1, dtype=np.int64)
        table[[ord(c) for c in tokenizer.chars]] = np.arange(tokenizer.vocab_size)
        ids = table[np.minimum(codes, len(table) - 1)]
        bad = (codes >= len(table)) | (ids < 0)
        if bad.any():
            tokenizer.encode(text)  # raises UnknownCharactersError naming the characters
        return torch.from_numpy(ids)
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


@dataclass
class TokenData:
    """Train/val token streams plus how many characters each covers (for bits per character)."""

    train: torch.Tensor
    val: torch.Tensor
    train_chars: int
    val_chars: int

    @classmethod
    def from_text(cls, text: str, tokenizer, val_fraction: float = 0.1) -> "TokenData":
        n = int(len(text) * (1 - val_fraction))
        train_text, val_text = text[:n], text[n:]
        return cls(_encode(tokenizer, train_text), _encode(tokenizer, val_text), len(train_text), len(val_text))

    def check_block_size(self, block_size: int) -> None:
        shortest = min(len(self.train), len(self.val))
        if shortest <= block_size:
            which = "validation" if len(self.val) < len(self.train) else "training"
            smaller = f" or a block size of at most {shortest - 1}" if shortest > 1 else ""
            raise DataError(
                f"the corpus is too short for block_size {block_size}: its {which} part has only "
                f"{shortest} tokens. Use a longer text (at least ~{(block_size + 2) * 10} tokens){smaller}."
            )

    def get_batch(self, split: str, batch_size: int, block_size: int,
                  generator: torch.Generator | None = None):
        """Random contiguous chunks: x (B, T) and the next-token targets y (B, T)."""
        data = self.train if split == "train" else self.val
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        offsets = torch.arange(block_size + 1)
        chunk = data[ix[:, None] + offsets]
        return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()
