"""The GPU path (gpt.accel): what holds on CPU is tested everywhere; the CUDA tests run only where a GPU
is (scripts/gpu_check.sh runs them with a short GPU benchmark)."""
from __future__ import annotations

import pytest
import torch

from gpt import GPT
from gpt.accel import CUDA_LOSS_READ_EVERY, LossReader, autocast, device_status, to_device
from gpt.config import TrainConfig, preset_config
from gpt.trainer import Trainer, TrainingDiverged

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cpu_path_is_unchanged():
    """On CPU: no autocast, a plain copy, and the loss read at every step."""
    cpu = torch.device("cpu")
    with autocast(cpu):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    reader = LossReader(cpu)
    assert [reader.read(torch.tensor(float(s)), s) for s in (1, 2)] == [[(1, 1.0)], [(2, 2.0)]]


def test_device_status_in_words():
    """What the Train tab shows: the CPU and its threads; on CUDA, torch's memory counters and NVML's
    utilisation (here on stand-ins for torch.cuda's counters: this machine has no GPU)."""
    assert device_status("cpu") == f"cpu ({torch.get_num_threads()} threads)"


def test_device_status_on_cuda_reads_the_counters(monkeypatch):
    props = type("Props", (), {"name": "NVIDIA H200", "total_memory": 141 * 2**30})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda i: 3 * 2**29)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda i: 2**31)
    monkeypatch.setattr(torch.cuda, "utilization", lambda i: 87)
    assert device_status("cuda:0") == "cuda:0 NVIDIA H200 · memory 1.50 GiB in use (peak 2.00) of 141 GiB · " \
                                      "utilisation 87 %"

    def no_nvml(i):
        raise ModuleNotFoundError("pynvml")
    monkeypatch.setattr(torch.cuda, "utilization", no_nvml)
    assert device_status("cuda:0").endswith("utilisation unknown (install nvidia-ml-py)")


@needs_cuda
def test_device_status_on_this_gpu():
    x = torch.ones(1024, 1024, device="cuda")
    text = device_status(x.device)
    assert text.startswith("cuda:0 ") and torch.cuda.get_device_name(0) in text and "GiB in use" in text


def _run(char_data, vocab, device: str, steps: int = 30, **kw) -> Trainer:
    torch.manual_seed(0)
    model = GPT(preset_config("gpt-tiny", vocab, dropout=0.0))
    cfg = TrainConfig(max_iters=steps, batch_size=16, lr=6e-3, warmup_iters=5, eval_interval=15, eval_iters=4,
                      seed=0, device=device, **kw)
    trainer = Trainer(model, char_data, cfg)
    list(trainer.run())
    return trainer


@needs_cuda
def test_cuda_training_matches_cpu_training(char_data, char_tok):
    """bf16 autocast on the GPU follows the CPU float32 run: the same batches, a loss curve within
    bf16's rounding, every step's loss recorded (read in blocks of CUDA_LOSS_READ_EVERY)."""
    cpu = _run(char_data, char_tok.vocab_size, "cpu")
    gpu = _run(char_data, char_tok.vocab_size, "cuda")
    assert next(gpu.model.parameters()).is_cuda and next(gpu.model.parameters()).dtype == torch.float32
    a = [e.train_loss for e in cpu.history]
    b = [e.train_loss for e in gpu.history]
    assert len(b) == 30 and all(x == x for x in b)
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.05, (a, b)
    assert b[-1] < b[0] - 0.5
    assert abs(cpu.history[-1].val_loss - gpu.history[-1].val_loss) < 0.05


@needs_cuda
def test_cuda_muon_and_compile(char_data, char_tok):
    gpu = _run(char_data, char_tok.vocab_size, "cuda", optimizer="muon", compile=True)
    losses = [e.train_loss for e in gpu.history]
    assert losses[-1] < losses[0] - 0.7, losses


@needs_cuda
def test_cuda_loss_is_read_in_blocks_not_every_step():
    reader = LossReader(torch.device("cuda"))
    got = [reader.read(torch.tensor(float(s), device="cuda"), s) for s in range(1, CUDA_LOSS_READ_EVERY + 1)]
    assert all(g == [] for g in got[:-1])
    assert got[-1] == [(s, float(s)) for s in range(1, CUDA_LOSS_READ_EVERY + 1)]
    assert reader.read(torch.tensor(7.0, device="cuda"), 11, force=True) == [(11, 7.0)]
    x = to_device(torch.arange(4), torch.device("cuda"))
    assert x.is_cuda and x.tolist() == [0, 1, 2, 3]


@needs_cuda
def test_cuda_divergence_still_stops_the_run(char_data, char_tok):
    torch.manual_seed(0)
    model = GPT(preset_config("bigram", char_tok.vocab_size))
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    trainer = Trainer(model, char_data, TrainConfig(max_iters=25, batch_size=2, eval_iters=1, device="cuda"))
    with pytest.raises(TrainingDiverged, match="at step 1: training stopped"):
        list(trainer.run())
