"""Training on real data, checkpoints (safe, atomic, never pickle) and the CLI."""
from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys

import pytest
import torch

from gpt import GPT, CheckpointError, TrainConfig, Trainer, TrainingDiverged, load_checkpoint, preset_config, save_checkpoint
from gpt.generate import generate_text
from gpt.trainer import lr_at

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_training_lowers_val_loss(trained_char):
    _, tok, events = trained_char
    evals = [e for e in events if e.val_loss is not None]
    assert events[-1].step == 200 and events[-1].done
    assert len(events) == 200 and len(evals) == 2
    # from ln(65) = 4.17 at init to clearly lower after 200 steps on Tiny Shakespeare
    assert evals[-1].val_loss < 2.8
    assert all(e.tokens_per_s > 0 and e.elapsed_s > 0 for e in events)


def test_stopping_keeps_model_at_that_step(char_data, char_tok):
    """Stopping the event stream after step 7 leaves exactly the weights of a 7-step run
    (a constant learning rate, so the two runs take the same steps)."""
    flat = dict(batch_size=4, lr=3e-3, min_lr=3e-3, warmup_iters=0, eval_interval=100, eval_iters=2)

    def trainer(max_iters):
        torch.manual_seed(0)
        model = GPT(preset_config("bigram", char_tok.vocab_size))
        return model, Trainer(model, char_data, TrainConfig(max_iters=max_iters, **flat))

    model, t = trainer(50)
    run = t.run()
    for ev in run:
        if ev.step == 7:
            snapshot = {k: v.clone() for k, v in model.state_dict().items()}
            break
    run.close()
    assert t.step == 7
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in snapshot.items())  # close() took no step
    reference, t7 = trainer(7)
    for _ in t7.run():
        pass
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in snapshot.items())


def test_schedule_warmup_and_cosine():
    c = TrainConfig(max_iters=100, lr=1e-3, warmup_iters=10)
    assert lr_at(0, c) == pytest.approx(1e-4)
    assert lr_at(9, c) == pytest.approx(1e-3)
    assert lr_at(100, c) == pytest.approx(1e-4)
    assert lr_at(55, c) == pytest.approx((1e-3 + 1e-4) / 2)


def test_schedule_warmup_stable_decay():
    c = TrainConfig(max_iters=110, lr=1e-3, min_lr=1e-4, warmup_iters=10, schedule="wsd", decay_frac=0.4)
    assert lr_at(0, c) == pytest.approx(1e-4)
    assert [lr_at(s, c) for s in (9, 10, 40, 70)] == pytest.approx([1e-3] * 4)  # held until 60% of 100 steps
    assert lr_at(90, c) == pytest.approx((1e-3 + 1e-4) / 2)  # halfway down the linear decay
    assert lr_at(110, c) == pytest.approx(1e-4)
    lrs = [lr_at(s, c) for s in range(70, 111)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_weight_decay_only_on_matrices(char_tok):
    from gpt.trainer import make_optimizer

    model = GPT(preset_config("block", char_tok.vocab_size))

    groups = make_optimizer(model, TrainConfig()).param_groups
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and groups[0]["weight_decay"] == 0.1
    assert all(p.dim() < 2 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0
    n_unique = len({id(p) for p in model.parameters()})
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == n_unique


def test_fused_optimizer_takes_the_same_steps_as_the_reference_adamw(char_data, char_tok):
    """The trainer's fused AdamW must be the same update as PyTorch's reference (for-loop) AdamW."""
    from gpt.trainer import make_optimizer

    cfg = TrainConfig(lr=3e-3, beta1=0.8)
    torch.manual_seed(0)
    fused_model = GPT(preset_config("block", char_tok.vocab_size, dropout=0.0))
    ref_model = GPT(preset_config("block", char_tok.vocab_size, dropout=0.0))
    ref_model.load_state_dict(fused_model.state_dict())
    start = fused_model.wte.weight.detach().clone()
    fused_opt = make_optimizer(fused_model, cfg)
    assert fused_opt.defaults["fused"]
    groups = [{"params": [p for p in ref_model.parameters() if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in ref_model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    ref_opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        x, y = char_data.get_batch("train", 4, 32, g)
        for model, opt in ((fused_model, fused_opt), (ref_model, ref_opt)):
            opt.zero_grad()
            model(x, y)[1].backward()
            opt.step()
    for (name, a), b in zip(fused_model.named_parameters(), ref_model.parameters()):
        # within 1 % of one step (lr); the key bias's true gradient is zero (softmax ignores a shift),
        # so its float noise, normalised by Adam, is where the two kernels' rounding shows most
        assert torch.allclose(a, b, atol=cfg.lr / 100, rtol=1e-5), name
    assert (fused_model.wte.weight - start).abs().max() > 1e-2  # the steps really moved the weights


def test_nan_loss_stops_with_message(char_data, char_tok):
    torch.manual_seed(0)
    model = GPT(preset_config("bigram", char_tok.vocab_size))
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    trainer = Trainer(model, char_data, TrainConfig(max_iters=5, batch_size=2, eval_iters=1))
    with pytest.raises(TrainingDiverged, match="Lower the learning rate"):
        list(trainer.run())


def test_save_load_identical_logits_and_samples(trained_char, tmp_path):
    model, tok, _ = trained_char
    save_checkpoint(model, tok, tmp_path / "ck", step=200, val_loss=1.0)
    loaded, tok2 = load_checkpoint(tmp_path / "ck")
    x = torch.tensor([tok.encode("ROMEO: But soft")])
    assert torch.equal(model(x)[0], loaded(x)[0])
    a = generate_text(model, tok, "ROMEO:", max_new_tokens=60, seed=7).text
    b = generate_text(loaded, tok2, "ROMEO:", max_new_tokens=60, seed=7).text
    assert a == b and len(a) == 60
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert meta["step"] == 200 and meta["tokenizer"]["chars"] == "".join(tok.chars)


def test_half_precision_checkpoint_loads_as_float32(trained_char, tmp_path):
    model, tok, _ = trained_char
    save_checkpoint(model, tok, tmp_path / "h", half=True)
    loaded, _ = load_checkpoint(tmp_path / "h")
    assert loaded.wte.weight.dtype == torch.float32
    x = torch.tensor([tok.encode("ROMEO:")])
    assert (model(x)[0] - loaded(x)[0]).abs().max() < 0.05


def test_resave_replaces_weights_file(trained_char, tmp_path):
    model, tok, _ = trained_char
    save_checkpoint(model, tok, tmp_path / "r", step=1)
    m2 = GPT(model.config)
    save_checkpoint(m2, tok, tmp_path / "r", step=2)
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert len([f for f in files if f.endswith(".safetensors")]) == 1
    assert load_checkpoint(tmp_path / "r", with_meta=True)[2]["step"] == 2


class Boom:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('ran')",))


@pytest.mark.parametrize("damage", ["truncate", "pickle", "no_meta", "bad_json", "wrong_config", "wrong_vocab",
                                    "not_a_checkpoint", "path_in_weights"])
def test_bad_checkpoints_clear_errors(trained_char, tmp_path, damage, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, tok, _ = trained_char
    ck = save_checkpoint(model, tok, tmp_path / "ck")
    meta_path = ck / "meta.json"
    meta = json.loads(meta_path.read_text())
    weights = ck / meta["weights"]
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
        expected = "corrupt or truncated"
    elif damage == "pickle":
        blob = pickle.dumps(Boom())
        weights.write_bytes(blob)
        meta["weights_sha256"] = __import__("hashlib").sha256(blob).hexdigest()
        meta_path.write_text(json.dumps(meta))
        expected = "not a valid safetensors file"
    elif damage == "no_meta":
        meta_path.unlink()
        expected = "meta.json is missing"
    elif damage == "bad_json":
        meta_path.write_text("{not json")
        expected = "not valid JSON"
    elif damage == "wrong_config":
        meta["config"]["n_embd"] = 48
        meta_path.write_text(json.dumps(meta))
        expected = "do not match its config"
    elif damage == "wrong_vocab":
        meta["tokenizer"]["chars"] = "abc"
        meta_path.write_text(json.dumps(meta))
        expected = "vocabulary does not match"
    elif damage == "not_a_checkpoint":
        meta_path.write_text(json.dumps({"hello": 1}))
        expected = "not a playAttention checkpoint"
    else:
        meta["weights"] = "../../etc/passwd"
        meta_path.write_text(json.dumps(meta))
        expected = "invalid weights file"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(ck)
    assert not (tmp_path / "PWNED").exists()


def test_pickle_file_passed_as_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "model.pt"
    bad.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="is a file"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no checkpoint named"):
        load_checkpoint("no-such-model")
    assert not (tmp_path / "PWNED").exists()


def test_empty_prompt_starts_from_documented_token(trained_char, tiny_gpt2):
    model, tok, _ = trained_char
    gen = generate_text(model, tok, "", max_new_tokens=20, seed=0)
    assert gen.used_start_token and gen.prompt_ids == [tok.encode("\n")[0]]
    m2, g2 = tiny_gpt2
    gen2 = generate_text(m2, g2, "", max_new_tokens=5, seed=0)
    assert gen2.prompt_ids == [50256] and len(gen2.new_ids) == 5


def test_long_prompt_is_cropped(trained_char):
    model, tok, _ = trained_char
    gen = generate_text(model, tok, "to be or not " * 50, max_new_tokens=5, seed=0)
    assert gen.cropped and len(gen.prompt_ids) == model.config.block_size


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_train_then_sample(tmp_path):
    out = tmp_path / "run"
    r = run_cli("gpt.train", "--preset", "bigram", "--tokenizer", "char", "--max-iters", "60", "--batch-size", "8",
                "--eval-interval", "30", "--eval-iters", "4", "--out", str(out), "--lr", "0.01")
    assert r.returncode == 0, r.stderr
    assert "val" in r.stdout and "bits/char" in r.stdout
    for name in ("meta.json", "report.md", "loss.csv"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "Sample before training" in report and "Sample after training" in report
    assert not (out / "loss.html").exists()  # gpt writes data; explainer draws it:
    drawn = run_cli("explainer.report", str(out))
    assert drawn.returncode == 0, drawn.stderr
    html = (out / "loss.html").read_text()
    assert "cdn.plot.ly" not in html[:5000] and "bigram" in html
    rows = (out / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 61
    meta = json.loads((out / "meta.json").read_text())
    assert math.isfinite(meta["val_loss"]) and meta["val_loss"] < math.log(65)
    s1 = run_cli("gpt.sample", "--checkpoint", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "3")
    s2 = run_cli("gpt.sample", "--checkpoint", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "40", "--seed", "3")
    assert s1.returncode == 0 and s1.stdout == s2.stdout and s1.stdout.startswith("ROMEO:")
    more = run_cli("gpt.train", "--init-from", str(out), "--max-iters", "10", "--eval-iters", "2", "--batch-size", "8",
                   "--out", str(tmp_path / "more"), "--schedule", "wsd", "--warmup-iters", "2", "--decay-frac", "0.5",
                   "--beta1", "0.8")
    assert more.returncode == 0, more.stderr
    meta2 = json.loads((tmp_path / "more" / "meta.json").read_text())
    assert {k: meta2["train_config"][k] for k in ("schedule", "decay_frac", "beta1")} == \
        {"schedule": "wsd", "decay_frac": 0.5, "beta1": 0.8}
    lrs = [float(row.split(",")[2]) for row in (tmp_path / "more" / "loss.csv").read_text().splitlines()[1:]]
    assert lrs[2:7] == pytest.approx([1e-3] * 5) and all(a > b for a, b in zip(lrs[6:], lrs[7:]))  # hold, then decay
    assert meta2["step"] == 70 and meta2["command"].count("python -m gpt.train") == 2
    assert meta2["config"] == meta["config"] and meta2["tokenizer"] == meta["tokenizer"]
    assert "Sample before this run" in (tmp_path / "more" / "report.md").read_text()
    bad = run_cli("gpt.sample", "--checkpoint", str(out), "--prompt", "café")
    assert bad.returncode == 2 and "'é'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_cli_bad_input_through_the_real_entry_point(tmp_path):
    """The bad-input table calls each CLI's main() in-process; this one case goes through
    ``python -m`` to show the real process exits 2 with the message and no traceback."""
    r = run_cli("gpt.train", "--preset", "gpt-tiny", "--n-embd", "130", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "divisible by n_head" in r.stderr and "Traceback" not in r.stderr


def test_finish_run_after_a_stop_between_evaluations(tmp_path):
    from gpt.run import build_run, finish_run

    run = build_run(preset="bigram", tokenizer="char", data=None,
                    train=TrainConfig(max_iters=50, batch_size=4, eval_interval=40, eval_iters=2))
    for ev in run.trainer.run():
        if ev.step == 5:
            break
    meta = finish_run(run, tmp_path / "stopped", command="test", wall=0.1, title="t", sample_before="",
                      eval_batches=4)
    assert meta["step"] == 5 and math.isfinite(meta["train_loss"])
    assert "final train loss" in (tmp_path / "stopped" / "report.md").read_text()
