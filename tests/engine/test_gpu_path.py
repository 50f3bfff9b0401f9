"""The GPU fast path, checked on the CPU: FlexAttention = the dense mask, the host-side gather of the
supervised positions, the model FLOPs and MFU, the peak table, `compile = "auto"`, and the
trainer's deferred read-backs (forced on the CPU with a fused AdamW) giving the same steps,
events, audit and resume as reading every step."""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest
import torch

from engine.audit_verify import verify_audit
from engine.batching import collate
from engine.config import TrainConfig, load_config
from engine.device import peak_flops, peak_of_name, use_compile
from engine.events import RunError, Step, from_dict
from engine.model import GPT, GPTConfig
from engine.runs import checkpoints_in
from engine.sizing import flops_per_token, training_flops
from engine.train import loop
from engine.train.setup import SupervisedLoss
from helpers_data import prepared, varied
from helpers_train import tiny, train
from mypt_tui.present.console import progress_line

# FlexAttention and SDPA with the dense mask sum the same products in another order: on fp32
# logits of these sizes the two differ by a few 1e-7 (measured: 2.4e-7).
FLEX_ATOL = 1e-5

VARIANTS = [{}, dict(pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm", bias=False, tie_weights=True)]


class Episodes:
    """Random episodes of given lengths: ids below 100, about half the targets supervised."""

    def __init__(self, lengths: list[int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.eps = [(rng.integers(0, 100, n), (rng.random(n) < 0.5).astype(np.uint8)) for n in lengths]

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.eps[i]


SRC = Episodes([20, 35, 9, 50, 17, 40, 12, 64, 30, 3])
ROWS = [[0, 1, 2], [3], [4, 5, 9], [6, 7]]


def packed(block: int = 128, **kw):
    return collate(ROWS, SRC, block_size=block, batching="pack", pad_id=0, **kw)


def model(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=128, vocab_size=100, dropout=0.0, **kw))


# -- attention -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", VARIANTS)
def test_flex_attention_gives_the_dense_masks_logits_and_loss_on_packed_rows(kw):
    m, b = model(**kw).eval(), packed()
    out = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flex_attention's "called without torch.compile" (the CPU reference)
        for mode in ("dense", "flex"):
            m.packed_attention = mode
            logits = m(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids)
            loss = SupervisedLoss(m)(b)
            out[mode] = logits, loss
    torch.testing.assert_close(out["flex"][0], out["dense"][0], atol=FLEX_ATOL, rtol=1e-5)
    assert out["flex"][1].item() == pytest.approx(out["dense"][1].item(), rel=1e-6)


def test_flex_is_chosen_on_a_gpu_never_with_attention_dropout_and_the_cpu_keeps_the_dense_mask():
    m, seg = model(), packed().segment_ids
    assert m.packed_attention == "auto" and not m.uses_flex(seg)  # the CPU: FlexAttention has no backward there
    m.packed_attention = "flex"
    assert m.uses_flex(seg)
    m.set_dropout(0.1)
    assert m.train().uses_flex(seg) is False  # FlexAttention has no attention dropout
    assert m.eval().uses_flex(seg)
    mask, causal = m._attention_mask(128, seg, None, seg.device)
    assert type(mask).__name__ == "BlockMask" and not causal
    m.packed_attention = "dense"
    assert m._attention_mask(128, seg, None, seg.device)[0].shape == (4, 1, 128, 128)


@pytest.mark.slow
def test_compiled_flex_attention_gives_the_dense_masks_logits_on_the_cpu():
    m, b = model().eval(), packed()
    blocks = [torch.compile(blk) for blk in m.transformer.h]
    with torch.no_grad():
        m.packed_attention = "dense"
        want = m.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids)
        m.packed_attention = "flex"
        got = m.hidden(b.x, segment_ids=b.segment_ids, position_ids=b.position_ids, blocks=blocks)
    torch.testing.assert_close(got, want, atol=FLEX_ATOL, rtol=1e-5)


# -- the batch and the output layer ----------------------------------------------------------------

def test_collate_gives_the_supervised_positions_counts_and_attention_pairs():
    b = packed(block=128, min_rows=6)
    assert b.x.shape == (6, 128) and b.positions == 6 * 128
    assert torch.equal(b.sup_index, b.mask.flatten().nonzero().squeeze(1))
    assert torch.equal(b.sup_targets, b.y[b.mask]) and b.supervised == int(b.mask.sum())
    spans = [[19, 34, 8], [49], [16, 39, 2], [11, 63]]
    want = sum(sum(s * s for s in row) + (128 - sum(row)) ** 2 for row in spans) + 2 * 128 * 128
    assert b.attention_pairs == want
    pad = collate([[0], [3]], SRC, block_size=64, batching="pad", pad_id=0)
    assert pad.attention_pairs == 2 * 64 * 64 and pad.positions == 128


@pytest.mark.parametrize("kw", VARIANTS)
def test_the_host_side_gather_gives_the_boolean_index_loss_and_gradients_bit_for_bit(kw):
    b = packed()
    results = []
    for gathered in (False, True):
        m = model(**kw)
        extra = dict(sup_index=b.sup_index, sup_targets=b.sup_targets) if gathered else {}
        loss = m.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids, **extra)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in m.parameters()]))
    (a, ga), (c, gc) = results
    assert torch.equal(a, c) and all(torch.equal(x, y) for x, y in zip(ga, gc))


# -- FLOPs, peaks, MFU -----------------------------------------------------------------------------

@pytest.mark.parametrize("kw", VARIANTS)
def test_training_flops_of_a_full_row_are_flops_per_token_times_its_length(kw):
    cfg = GPTConfig(n_layer=3, n_head=4, n_embd=64, block_size=256, vocab_size=1000, **kw)
    T = 256
    assert training_flops(cfg, positions=T, outputs=T, attention_pairs=T * T) == pytest.approx(
        flops_per_token(cfg, T) * T, rel=1e-12)
    full = training_flops(cfg, positions=T, outputs=T, attention_pairs=T * T)
    assert training_flops(cfg, positions=T, outputs=10, attention_pairs=T * T) == pytest.approx(
        full - 6 * 1000 * 64 * (T - 10), rel=1e-12)


def test_the_guides_run_is_about_2_3e17_flops():
    cfg = GPTConfig(n_layer=32, n_head=20, n_embd=1280, block_size=1024, vocab_size=50304)
    step = training_flops(cfg, positions=10 * 1024, outputs=10 * 1024, attention_pairs=10 * 1024 * 1024)
    assert 2.2e17 < 5000 * step < 2.9e17  # 6N alone is 2.3e17; attention adds 12%


def test_peak_flops_come_from_the_gpu_name_or_the_override_and_never_for_the_cpu():
    assert peak_of_name("NVIDIA H100 80GB HBM3") == 989e12 and peak_of_name("NVIDIA H100 PCIe") == 756e12
    assert peak_of_name("NVIDIA A100-SXM4-40GB") == 312e12 and peak_of_name("NVIDIA A10") == 125e12
    assert peak_of_name("NVIDIA H200") == 989e12 and peak_of_name("NVIDIA L4") == 121e12
    assert peak_of_name("NVIDIA GeForce RTX 4090") == 165e12 and peak_of_name("Tesla T4") == 65e12
    assert peak_of_name("NVIDIA A10G") is None and peak_of_name("Some New GPU") is None
    assert peak_flops(torch.device("cpu")) is None and peak_flops(torch.device("cpu"), 2.5) == 2.5e12


def test_compile_is_auto_by_default_and_true_false_are_still_accepted(tmp_path):
    assert TrainConfig().compile == "auto"
    for text, want in (('"auto"', "auto"), ("true", True), ("false", False), ('"true"', True)):
        (tmp_path / "c.toml").write_text(f"compile = {text}\n")
        assert load_config(tmp_path / "c.toml").compile == want
    assert not use_compile("auto", torch.device("cpu")) and use_compile(True, torch.device("cpu"))
    assert not use_compile(False, torch.device("cuda"))
    assert TrainConfig(peak_tflops=312).peak_tflops == 312.0


def test_the_progress_line_shows_mfu_and_peak_memory_only_when_reported():
    common = dict(step=5, loss=1.0, lr=1e-4, grad_norm=1.0, tokens=100, supervised=50, tokens_per_s=1000.0,
                  supervised_per_s=500.0, epoch=0, epoch_progress=0.5, elapsed=1.0, eta_s=10.0)
    plain = progress_line(Step(**common), 10, None)
    assert "MFU" not in plain and "GiB" not in plain
    line = progress_line(Step(**common, mfu=0.414, peak_memory_bytes=3 * 2**30), 10, None)
    assert "| MFU 41% | peak mem 3.0 GiB |" in line
    old = from_dict({"type": "step", **common})  # an events.jsonl written before these fields
    assert old.mfu is None and old.peak_memory_bytes is None


# -- the trainer: deferred read-backs --------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data")
    prepared(tmp, varied(48), tokenization="char", val_split=0.25, seed=1)
    return tmp / "out"


@pytest.fixture
def fused(monkeypatch):
    """A fused AdamW on the CPU (as a GPU run gets one); `deferred(bool)` chooses the read-back mode,
    and the read-backs are counted."""
    monkeypatch.setattr(torch.optim, "AdamW", functools.partial(torch.optim.AdamW, fused=True))
    real_flush = loop.Steps.flush
    counts = {"flushes": 0}

    def counting(self):
        counts["flushes"] += bool(self.pending)
        real_flush(self)

    monkeypatch.setattr(loop.Steps, "flush", counting)

    def deferred(on: bool):
        monkeypatch.setattr(loop, "defers_readback", lambda run: on)
        counts["flushes"] = 0
    return deferred, counts


def test_deferred_read_backs_give_every_step_the_same_loss_event_and_audit(dataset, tmp_path, fused):
    deferred, counts = fused
    cfg = tiny(max_iters=23, log_interval=5, eval_interval=10, save_every=10, peak_tflops=1.0)
    deferred(False)
    _, at_once = train(dataset, tmp_path / "at_once", cfg)
    assert counts["flushes"] == 23
    deferred(True)
    _, later = train(dataset, tmp_path / "later", cfg)
    # read back at steps 5, 10, 15, 20 (log_interval; 10 and 20 are also eval and save points) and 23 (the end)
    assert counts["flushes"] == 5
    a, b = at_once.steps(), later.steps()
    assert [s.step for s in b] == list(range(1, 24))
    assert [(s.loss, s.grad_norm, s.tokens, s.supervised, s.episodes, s.epoch, s.epoch_progress) for s in a] == \
           [(s.loss, s.grad_norm, s.tokens, s.supervised, s.episodes, s.epoch, s.epoch_progress) for s in b]
    assert all(s.mfu is not None and 0 < s.mfu < 1 and s.peak_memory_bytes is None for s in b)
    for name in ("at_once", "later"):
        assert verify_audit(tmp_path / name / "audit.jsonl").ok
    kinds = [[json.loads(line)["type"] for line in (tmp_path / name / "events.jsonl").read_text().splitlines()]
             for name in ("at_once", "later")]
    assert kinds[0] == kinds[1]  # the same events in the same order (eval, checkpoint, epoch ends)


def test_deferred_read_backs_resume_bit_identically_after_a_stop_with_a_batch_drawn_ahead(dataset, tmp_path, fused):
    deferred, _ = fused
    deferred(True)
    cfg = tiny(dropout=0.1, log_interval=4, save_every=100)
    _, whole = train(dataset, tmp_path / "whole", cfg)
    first, part = train(dataset, tmp_path / "split", cfg, stop_at=7)  # between read-backs: 7 is not due
    assert first.reason == "stopped" and first.step == 8  # the stop is seen at the read-back of step 8
    resumed, rest = train(dataset, tmp_path / "split", cfg, resume=True)
    assert resumed.step == 20
    losses = {s.step: s.loss for s in part.steps() + rest.steps()}
    assert losses == {s.step: s.loss for s in whole.steps()}
    assert verify_audit(tmp_path / "split" / "audit.jsonl").ok


def test_a_nan_found_at_a_read_back_stops_at_its_step_with_nothing_after_it_recorded(dataset, tmp_path, fused,
                                                                                      monkeypatch):
    deferred, _ = fused
    deferred(True)
    real = SupervisedLoss.forward
    calls = {"n": 0}

    def poisoned(self, b):
        calls["n"] += 1
        out = real(self, b)
        return out * float("nan") if calls["n"] == 8 else out  # one bad step; the ones after it are finite

    monkeypatch.setattr(SupervisedLoss, "forward", poisoned)
    result, rec = train(dataset, tmp_path / "run", tiny(save_every=5, eval_interval=1000, log_interval=5))
    assert result.reason == "failed" and result.step == 7 and calls["n"] == 10  # found at the read-back of step 10
    (err,) = [e for e in rec.events if isinstance(e, RunError)]
    assert err.message.startswith("loss became nan at step 8: stopping.")
    assert err.last_checkpoint.endswith("step_000005")
    assert [s.step for s in rec.steps()] == list(range(1, 8))
    assert [p for p, _ in checkpoints_in(tmp_path / "run")] == [5]


def test_a_set_found_inf_flag_leaves_weights_and_adam_state_untouched():
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True)
    b = packed()
    m.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids).backward()
    opt.step()
    before = [p.detach().clone() for p in m.parameters()]
    steps = [s["step"].clone() for s in opt.state.values()]
    m.supervised_loss(b.x, b.y, b.mask, segment_ids=b.segment_ids, position_ids=b.position_ids).backward()
    opt.found_inf = torch.ones(())
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))
    assert all(torch.equal(s["step"], t) for s, t in zip(opt.state.values(), steps))


# -- compile ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_compiled_training_compiles_each_region_once_however_the_supervised_count_changes(dataset):
    """torch.compile on the CPU (minutes on two cores): the blocks and the output loss compile once
    each; batches with other supervised counts (and a short batch, padded to batch_size rows) add
    no graph. The bench reports the same count on a GPU."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    src = Episodes([20, 35, 9, 50, 17, 40, 12, 64, 30, 3, 44, 21, 26, 5, 58, 33])
    m = model()
    eager, compiled = SupervisedLoss(m), SupervisedLoss(m, compiled=True)
    batches = [collate(rows, src, block_size=128, batching="pad", pad_id=0, min_rows=4)
               for rows in ([[0], [1], [2], [3]], [[4], [5], [6], [7]], [[8], [9], [10], [11]], [[12], [13]])]
    graphs = []
    for b in batches:
        got = compiled(b)
        got.backward()
        torch.testing.assert_close(got, eager(b), rtol=1e-5, atol=1e-4)
        graphs.append(counters["stats"]["unique_graphs"])
    assert len({int(b.supervised) for b in batches}) == 4
    assert graphs[0] <= 2 and graphs[-1] == graphs[0], graphs


@pytest.mark.slow
def test_a_compiled_run_trains_and_resumes_exactly_on_the_cpu(dataset, tmp_path):
    cfg = tiny(compile=True, max_iters=6, eval_interval=3, save_every=3, batching="pad")
    _, whole = train(dataset, tmp_path / "whole", cfg)
    _, part = train(dataset, tmp_path / "split", cfg, stop_at=3)
    _, rest = train(dataset, tmp_path / "split", cfg, resume=True)
    assert {s.step: s.loss for s in part.steps() + rest.steps()} == {s.step: s.loss for s in whole.steps()}


@pytest.mark.slow
def test_the_gpu_benchmark_runs_tiny_on_the_cpu(tmp_path):
    """`bench/gpu_throughput.py --tiny --device cpu`: the script a GPU session runs, as a smoke test."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "bench" / "gpu_throughput.py"), "--tiny", "--device", "cpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "gpu_throughput.jsonl").read_text().splitlines()]
    assert {(r["batching"], r["supervised_only"]) for r in rows} == {("pack", True), ("pad", True), ("pack", False)}
    assert all(r["tokens_per_s"] > 0 and r["supervised_per_s"] > 0 and r["recompiles_timed"] == 0 for r in rows)
    assert "recompiles while timed: 0" in done.stdout and (tmp_path / "gpu_throughput.md").exists()
