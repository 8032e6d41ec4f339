"""Benchmarks for what heads do: how fast an induction head forms, and how long the role and
logit-lens computations take.

    python -m explainer.bench --induction [--out DIR] [--iters N] [--eval-every 100] [--corpus passages]
    python -m explainer.bench --roles [--runs 20]

``--induction`` trains the ``induction`` preset (2 layers, attention only, untied embeddings)
from scratch with ``gpt.synthetic.INDUCTION_TRAIN`` on ``gpt.synthetic.induction_text(corpus)``
and scores every head (``explainer.head_roles``, a fresh seeded repeated random-token probe)
every ``--eval-every`` steps. Training seconds exclude the evaluations. Its last line is one JSON
object with ``induction_step`` / ``induction_seconds`` (first evaluation where the max induction
score exceeds 0.4; null if none) and ``max_induction_score``. Other processes may share the
CPUs: the load average is printed with the figures.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import torch

from gpt import GPT, TokenData, TrainConfig, Trainer, get_tokenizer, load_checkpoint, load_tiny_shakespeare
from gpt.checkpoint import CHECKPOINTS_DIR
from gpt.config import preset_config
from gpt.run import Run, finish_run
from gpt.synthetic import INDUCTION_TRAIN, induction_text

from .heads import INDUCTION_THRESHOLD, head_roles
from .lens import logit_lens

TIMING_TARGET_MS = 150.0


def train_induction(*, iters: int | None = None, eval_every: int = 100, corpus: str = "passages", seed: int = 0,
                    out: str | Path | None = None, log=print) -> dict:
    """Train the induction preset, scoring the heads every ``eval_every`` steps; return the figures."""
    text = induction_text(corpus, seed=seed)
    tok = get_tokenizer("char", corpus=text)
    data = TokenData.from_text(text, tok)
    torch.manual_seed(seed)
    model = GPT(preset_config("induction", tok.vocab_size))
    recipe = dict(INDUCTION_TRAIN, seed=seed, eval_interval=10**9, eval_iters=10)
    if iters:
        recipe["max_iters"] = int(iters)
    trainer = Trainer(model, data, TrainConfig(**recipe), tokenizer=tok)
    train_s, found, best, history = 0.0, None, 0.0, []
    resumed = time.perf_counter()
    for ev in trainer.run():
        train_s += time.perf_counter() - resumed - ev.eval_s  # the trainer's own evaluations excluded
        if ev.step % eval_every == 0 or ev.done:
            roles = head_roles(model)
            layer, head, score = roles.best_head("induction")
            best = max(best, score)
            history.append((ev.step, roles))
            if found is None and score > INDUCTION_THRESHOLD:
                found = (ev.step, train_s)
            log(f"step {ev.step:5d}  {train_s:7.1f} s  loss {ev.train_loss:.3f}  max induction score {score:.3f} "
                f"(layer {layer}, head {head})  previous-token {roles.best_head('previous-token')[2]:.3f}")
        resumed = time.perf_counter()
    final = head_roles(model, corpus=data)
    result = {"induction_step": found[0] if found else None,
              "induction_seconds": round(found[1], 2) if found else None,
              "max_induction_score": round(best, 4), "final_induction_score": round(final.best_head("induction")[2], 4),
              "icl_score": round(final.icl_score, 4), "steps": trainer.step, "train_seconds": round(train_s, 2),
              "corpus": corpus, "torch_threads": torch.get_num_threads(),
              "load_avg_1min": round(os.getloadavg()[0], 2)}
    if out:
        run = Run(model, tok, data, trainer)
        finish_run(run, Path(out), command="python -m explainer.bench --induction", wall=train_s,
                   title=f"Induction preset on {corpus} (induction head at step {result['induction_step']})",
                   sample_before="(not sampled)", eval_batches=20)
        result["out"] = str(out)
    return result


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def time_roles_and_lens(runs: int = 20, log=print) -> dict:
    """Median ms of ``head_roles`` and ``logit_lens`` (a full-context prompt) on gpt-tiny and shakespeare-gpt2."""
    text = load_tiny_shakespeare()
    char = get_tokenizer("char", corpus=text)
    torch.manual_seed(0)
    models = {"gpt-tiny": (GPT(preset_config("gpt-tiny", char.vocab_size)).eval(), char)}
    models["shakespeare-gpt2"] = load_checkpoint(CHECKPOINTS_DIR / "shakespeare-gpt2")
    result: dict = {"runs": runs, "torch_threads": torch.get_num_threads(), "target_ms": TIMING_TARGET_MS}
    for name, (model, tok) in models.items():
        prompt = text[:2000]  # cropped to the model's block_size
        result[f"{name}_head_roles_ms"] = _median_ms(lambda: head_roles(model), runs)
        result[f"{name}_logit_lens_ms"] = _median_ms(lambda: logit_lens(model, tok, prompt), runs)
        log(f"  {name:<17} head_roles median {result[f'{name}_head_roles_ms']:7.2f} ms   "
            f"logit_lens median {result[f'{name}_logit_lens_ms']:7.2f} ms (block_size {model.config.block_size})")
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return result


def main(args) -> dict:
    """Run the mode ``explainer.bench`` parsed (``--induction`` or ``--roles``) and print its JSON line."""
    if args.induction:
        print(f"induction preset on the {args.corpus!r} corpus, {torch.get_num_threads()} torch thread(s), "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        result = train_induction(iters=args.iters, eval_every=args.eval_every, corpus=args.corpus, out=args.out,
                                 log=lambda s: print(s, flush=True))
        if result["induction_step"] is None:
            print(f"  no induction head (score > {INDUCTION_THRESHOLD}) in {result['steps']} steps")
        else:
            print(f"  induction head at step {result['induction_step']} after {result['induction_seconds']} s "
                  f"of training")
    else:
        result = time_roles_and_lens(runs=args.runs)
    print(json.dumps(result))
    return result
