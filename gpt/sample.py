"""Sample text from a checkpoint.

    python -m gpt.sample --checkpoint shakespeare-char --prompt "ROMEO:" --max-new-tokens 300 \\
        --temperature 0.8 --top-k 40 --seed 0
"""
from __future__ import annotations

import argparse
import sys

from .checkpoint import CheckpointError, load_checkpoint
from .generate import generate_text
from .tokenizers import UnknownCharactersError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpt.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint folder, or a name such as shakespeare-char")
    p.add_argument("--prompt", default="", help="empty: start from the tokenizer's start token")
    p.add_argument("--max-new-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context every step")
    p.add_argument("--drop-unknown", action="store_true", help="drop characters the char model does not know")
    args = p.parse_args(argv)
    try:
        model, tok = load_checkpoint(args.checkpoint)
        prompt = args.prompt
        if args.drop_unknown and hasattr(tok, "drop_unknown"):
            prompt = tok.drop_unknown(prompt)
        gen = generate_text(model, tok, prompt, max_new_tokens=args.max_new_tokens,
                            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                            seed=args.seed, use_cache=not args.no_cache)
    except UnknownCharactersError as e:
        print(f"error: {e} (or pass --drop-unknown)", file=sys.stderr)
        return 2
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if gen.cropped:
        print(f"(prompt cropped to its last {model.config.block_size} tokens)", file=sys.stderr)
    if gen.used_start_token:
        start = tok.token_strings([tok.start_id])[0]
        print(f"(empty or blank prompt: starting from the start token {start})", file=sys.stderr)
    print(args.prompt + gen.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
