"""How long the Inspect view takes: trace + five-stage figure + all-heads grid.

    python -m explainer.bench [--runs 20] [--threads 1] [--tokens 64]
    python -m explainer.bench --induction [--out DIR]   # an induction head forming (explainer.bench_induction)
    python -m explainer.bench --roles [--runs 20]       # head_roles / logit_lens medians

A gpt-tiny model (4 layers x 4 heads x 128, block 64) with the char tokenizer on Tiny
Shakespeare, a prompt of ``--tokens`` characters. Timing does not depend on the weights,
so the model is untrained. Prints the median of each step over ``--runs`` runs, then one
JSON line. Other processes (e.g. training) may share the CPUs: the load average is
printed alongside, and medians rather than means keep one slow run from dominating.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from gpt import GPT, get_tokenizer, load_tiny_shakespeare, preset_config

from gpt.synthetic import INDUCTION_CORPORA

from . import bench_induction
from .figures import all_heads_figure, five_stages_figure
from .trace import trace_prompt

TARGET_MS = 100.0


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def run(runs: int = 20, tokens: int = 64, layer: int = 1, head: int = 2) -> dict:
    """Time each step ``runs`` times (after one warm-up) and return the medians in ms."""
    text = load_tiny_shakespeare()
    tok = get_tokenizer("char", corpus=text)
    torch.manual_seed(0)
    model = GPT(preset_config("gpt-tiny", tok.vocab_size)).eval()
    prompt = text[:tokens]
    times: dict[str, list[float]] = {"trace": [], "five_stages": [], "all_heads": [], "total": [], "to_json": []}
    for i in range(runs + 1):
        t0 = time.perf_counter()
        tr = trace_prompt(model, tok, prompt)
        t1 = time.perf_counter()
        stages = five_stages_figure(tr, layer, head)
        t2 = time.perf_counter()
        grid = all_heads_figure(tr)
        t3 = time.perf_counter()
        payload = len(stages.to_json()) + len(grid.to_json())  # what a UI would send; not part of the total
        if i == 0:
            continue  # warm-up: imports, first-call allocations
        times["trace"].append((t1 - t0) * 1000)
        times["five_stages"].append((t2 - t1) * 1000)
        times["all_heads"].append((t3 - t2) * 1000)
        times["total"].append((t3 - t0) * 1000)
        times["to_json"].append(_ms(t3))
    medians = {f"{k}_ms": round(statistics.median(v), 2) for k, v in times.items()}
    return dict(medians, runs=runs, tokens=tr.n_tokens, model="gpt-tiny", tokenizer="char",
                torch_threads=torch.get_num_threads(), load_avg_1min=round(os.getloadavg()[0], 2),
                json_bytes=payload, target_ms=TARGET_MS, under_target=medians["total_ms"] < TARGET_MS)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=64, help="prompt length (at most block_size 64)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is fastest for a model this small and on a shared CPU")
    parser.add_argument("--induction", action="store_true",
                        help="train the induction preset from scratch; print when an induction head forms")
    parser.add_argument("--roles", action="store_true", help="time head_roles and logit_lens instead")
    parser.add_argument("--out", default=None, help="--induction: save the trained model as a checkpoint folder")
    parser.add_argument("--iters", type=int, default=None, help="--induction: steps (default: the recipe's)")
    parser.add_argument("--eval-every", type=int, default=100, help="--induction: score the heads every N steps")
    parser.add_argument("--corpus", default="passages", choices=INDUCTION_CORPORA,
                        help="--induction: repeated Shakespeare passages mixed with random chunks, or random only")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.induction or args.roles:
        return bench_induction.main(args)
    result = run(runs=args.runs, tokens=min(args.tokens, 64))
    print(f"gpt-tiny, char tokenizer, {result['tokens']}-token prompt, {result['runs']} runs, "
          f"{result['torch_threads']} torch thread(s), load average {result['load_avg_1min']}")
    for key, label in (("trace_ms", "trace_prompt"), ("five_stages_ms", "five_stages_figure"),
                       ("all_heads_ms", "all_heads_figure"), ("total_ms", "total"),
                       ("to_json_ms", "(to_json of both, not in total)")):
        print(f"  {label:<32} median {result[key]:8.2f} ms")
    verdict = "under" if result["under_target"] else "OVER"
    print(f"  total is {verdict} the {TARGET_MS:.0f} ms target")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
