"""Load time, resident memory, Inspect trace and head-roles time of a GPT-2 in the Hugging Face layout.

    python -m explainer.bench_hf [FOLDER]     # FOLDER: config.json + model.safetensors

Without FOLDER it builds a random model of GPT-2 small's shape (12 layers x 12 heads x 768,
1024 positions, 50257 tokens) with ``transformers`` (the test-only reference), saves it to a
temporary folder and measures that: the real GPT-2 small cannot be downloaded here. Prints one
JSON line; the times are medians. Other jobs on the machine change them: say so when quoting.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _random_gpt2_small(folder: Path) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(folder, safe_serialization=True)


def measure(folder: Path, tokens: int = 64, runs: int = 7) -> dict:
    import psutil
    import torch

    from gpt import load_pretrained

    from .heads import head_roles
    from .trace import trace_prompt

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    model, tok = load_pretrained(folder)
    load_s = time.perf_counter() - t0
    rss1 = proc.memory_info().rss
    ids = (tok.encode(" the quick brown fox jumps over the lazy dog") * tokens)[:tokens]
    prompt = tok.decode(ids)
    trace, roles = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        tr = trace_prompt(model, tok, prompt)
        trace.append(time.perf_counter() - t0)
    for _ in range(max(1, runs // 2)):
        t0 = time.perf_counter()
        head_roles(model)
        roles.append(time.perf_counter() - t0)
    c = model.config
    return {"shape": f"{c.n_layer}x{c.n_head}x{c.n_embd}", "params": model.num_params(),
            "weights_mb": round(sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20),
            "load_s": round(load_s, 2), "rss_added_mb": round((rss1 - rss0) / 2**20),
            "prompt_tokens": len(tr.ids), "trace_ms_median": round(1000 * statistics.median(trace)),
            "head_roles_ms_median": round(1000 * statistics.median(roles)), "threads": torch.get_num_threads(),
            "load_average": [round(x, 1) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m explainer.bench_hf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", help="a GPT-2 folder (default: a random GPT-2 small, built and removed)")
    p.add_argument("--runs", type=int, default=7, help="trace runs (head roles: half as many)")
    args = p.parse_args(argv)
    if args.folder:
        print(json.dumps(measure(Path(args.folder), runs=args.runs)))
        return 0
    with tempfile.TemporaryDirectory(prefix="playattention-gpt2-small-") as tmp:
        _random_gpt2_small(Path(tmp))
        print(json.dumps({"model": "random GPT-2 small (transformers)", **measure(Path(tmp), runs=args.runs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
