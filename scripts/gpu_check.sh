#!/usr/bin/env bash
# The GPU path, checked on a machine with a CUDA GPU (under 8 minutes on one modern GPU):
#   1. the CUDA tests (tests/test_gpu.py; they skip without a GPU) and the optimiser tests,
#   2. a short benchmark: training tokens/s of gpt-small (6 x 6 x 384, block 256, batch 64) in bf16,
#      eager and torch.compile'd, AdamW and Muon; and nanoGPT's CPU recipe (gpt-tiny, batch 12,
#      2000 steps) on this package's trainer, on the GPU.
# Usage: bash scripts/gpu_check.sh    (from the repository root; prints one JSON line per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible to torch: nothing to check here")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, "
      f"bf16 {torch.cuda.is_bf16_supported()}")
PY
timeout 240 python -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_optim.py -rs
timeout 300 python - <<'PY'
import json, statistics, time
import torch
from gpt.config import TrainConfig, preset_config
from gpt.data import TokenData, load_tiny_shakespeare
from gpt.model import GPT
from gpt.tokenizers import get_tokenizer
from gpt.trainer import Trainer

text = load_tiny_shakespeare()
tok = get_tokenizer("char", corpus=text)
data = TokenData.from_text(text, tok)


def measure(label, preset, steps, skip, **kw):
    torch.manual_seed(0)
    model = GPT(preset_config(preset, tok.vocab_size, dropout=0.0, bias=kw.pop("bias", True)))
    cfg = TrainConfig(max_iters=steps, eval_interval=kw.pop("eval_interval", 10**6), eval_iters=kw.pop("eval_iters", 1),
                      device="cuda", **kw)
    trainer = Trainer(model, data, cfg)
    t0 = time.perf_counter()
    events = list(trainer.run())
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    pairs = zip(events[skip:], events[skip + 1:])
    ms = statistics.median((b.elapsed_s - a.elapsed_s - b.eval_s) * 1000 for a, b in pairs)
    tokens = cfg.batch_size * model.config.block_size
    val = [e.val_loss for e in events if e.val_loss is not None]
    print(json.dumps({"run": label, "ms_per_step": round(ms, 2), "tokens_per_s": round(tokens / ms * 1000),
                      "wall_s": round(wall, 1), "last_val": round(val[-1], 4) if val else None,
                      "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}), flush=True)
    torch.cuda.reset_peak_memory_stats()


small = dict(batch_size=64, lr=1e-3, warmup_iters=10)
measure("gpt-small bf16 eager adamw", "gpt-small", 120, 20, **small)
measure("gpt-small bf16 compiled adamw", "gpt-small", 160, 60, compile=True, **small)
measure("gpt-small bf16 eager muon", "gpt-small", 120, 20, optimizer="muon", **small)
measure("nanoGPT CPU recipe on this trainer (gpt-tiny, batch 12, 2000 steps)", "gpt-tiny", 2000, 50, bias=False,
        batch_size=12, lr=1e-3, min_lr=1e-4, warmup_iters=100, beta1=0.9, beta2=0.99, eval_interval=250, eval_iters=20)
PY
