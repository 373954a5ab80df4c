"""--amp on a CPU is never a silent slowdown: bf16 autocast only where it measured faster, with the numbers."""
from __future__ import annotations

import argparse

import pytest
import torch

from clim.engine.cpu_amp import CPUAmpProbe, probe_cpu_bf16
from tests.helpers import REPO_ROOT, load_tool


def load_train_tool():
    return load_tool('train')


def test_probe_times_both_precisions() -> None:
    probe = probe_cpu_bf16(width=64, tokens=16, batch=2, repeats=1)
    assert probe.fp32_s > 0 and probe.bf16_s > 0
    assert probe.speedup == pytest.approx(probe.fp32_s / probe.bf16_s)


@pytest.mark.parametrize('fp32_s,bf16_s,faster', [(0.10, 0.25, False), (0.10, 0.10, False), (0.25, 0.10, True)])
def test_probe_decision_and_message(fp32_s: float, bf16_s: float, faster: bool) -> None:
    probe = CPUAmpProbe(fp32_s=fp32_s, bf16_s=bf16_s)
    assert probe.bf16_faster is faster
    msg = probe.message()
    assert f'{bf16_s * 1e3:.0f} ms under bf16' in msg and f'{fp32_s * 1e3:.0f} ms in float32' in msg
    assert ('training with bf16 autocast' in msg) is faster
    assert ('trains in float32' in msg) is not faster


@pytest.mark.parametrize('bf16_s,expected', [(0.3, False), (0.05, True)])
def test_train_amp_on_cpu_follows_the_measurement(monkeypatch, capsys, bf16_s: float, expected: bool) -> None:
    import clim.engine.cpu_amp as cpu_amp

    tool = load_train_tool()
    monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: CPUAmpProbe(fp32_s=0.1, bf16_s=bf16_s))
    args = argparse.Namespace(cpu_amp='auto', launcher='none')
    assert tool.cpu_bf16_wanted(args) is expected
    out = capsys.readouterr().out
    assert f'{bf16_s * 1e3:.0f} ms under bf16 autocast vs 100 ms in float32' in out
    # forced choices and distributed runs do not measure
    monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: pytest.fail('probed'))
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='bf16', launcher='none')) is True
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='fp32', launcher='none')) is False
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='auto', launcher='pytorch')) is False
    assert 'float32' in capsys.readouterr().out


def test_resume_keeps_the_measured_choice(monkeypatch, capsys, tmp_path) -> None:
    import clim.engine.cpu_amp as cpu_amp

    tool = load_train_tool()
    work = str(tmp_path / 'work')
    monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: CPUAmpProbe(fp32_s=0.1, bf16_s=0.3))
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='auto', launcher='none', resume=None), work) is False
    # a new measurement would now say bf16: a resumed run keeps float32, a fresh run measures again
    monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: CPUAmpProbe(fp32_s=0.3, bf16_s=0.1))
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='auto', launcher='none', resume='auto'), work) is False
    assert 'resumed: float32' in capsys.readouterr().out
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='auto', launcher='none', resume=None), work) is True


def test_detectors_train_in_float32_on_cpu_even_when_bf16_is_forced(monkeypatch, capsys) -> None:
    """mmcv's CPU nms / RoIAlign take float32 only: a two-stage detector never gets CPU bf16 autocast."""
    import clim.engine.cpu_amp as cpu_amp
    from mmengine.config import Config

    tool = load_train_tool()
    monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: pytest.fail('probed'))
    detector = Config(dict(model=dict(type='FViT', rpn_head=dict(type='RPNHead'))))
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='bf16', launcher='none'), None, detector) is False
    assert 'float32 only' in capsys.readouterr().out
    clim_cfg = Config(dict(model=dict(type='CLIM')))
    assert tool.cpu_bf16_wanted(argparse.Namespace(cpu_amp='bf16', launcher='none'), None, clim_cfg) is True


def _rng_states() -> tuple:
    import random

    import numpy as np
    return torch.random.get_rng_state(), np.random.get_state(), random.getstate()


def _same_rng(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and all((x == y).all() if hasattr(x, 'all') else x == y
                                           for x, y in zip(a[1], b[1])) and a[2] == b[2]


class _PrecisionCost:
    """A clock that advances by a fixed cost per call of a real layer of the model, the cost chosen by the
    dtype the layer computed in: the timings follow what actually ran (a swap of the two precisions, or a
    bf16 step that never autocasts, shows in the result)."""

    def __init__(self, layer, fp32_cost: float, bf16_cost: float) -> None:
        self.now = 0.0
        self.calls = {torch.float32: 0, torch.bfloat16: 0}
        self.cost = {torch.float32: fp32_cost, torch.bfloat16: bf16_cost}
        layer.register_forward_hook(self._hook)

    def _hook(self, module, args, out) -> None:
        self.calls[out.dtype] += 1
        self.now += self.cost[out.dtype]

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize('fp32_cost,bf16_cost', [(3.0, 1.0), (1.0, 2.5)])
def test_training_step_probe_times_the_model_in_both_precisions(tiny_clip_cfg, fp32_cost, bf16_cost) -> None:
    from clim.engine.cpu_amp import probe_training_step
    from clim_test_utils import build_tiny_clim, random_batch

    model = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2,))
    clock = _PrecisionCost(model.clip.visual.transformer.resblocks[-2].mlp.c_fc, fp32_cost, bf16_cost)
    probe = probe_training_step(model, random_batch(10), repeats=2, warmup=1, clock=clock)
    # 1 warm-up + 2 timed steps per precision, each step calling the layer the same number of times
    assert clock.calls[torch.float32] == clock.calls[torch.bfloat16] > 0
    per_step = clock.calls[torch.float32] // 3
    assert probe.fp32_s == pytest.approx(per_step * fp32_cost) and probe.bf16_s == pytest.approx(per_step * bf16_cost)
    assert probe.bf16_faster is (fp32_cost > 1.05 * bf16_cost)
    msg = probe.message()
    assert 'training step of this CLIM (10 inputs of (3, 64, 64), mosaics at 128' in msg
    assert f'{probe.bf16_s * 1e3:.0f} ms under bf16 autocast vs {probe.fp32_s * 1e3:.0f} ms in float32' in msg


def test_training_step_probe_leaves_model_and_rng_as_they_were(tiny_clip_cfg) -> None:
    import random

    import numpy as np

    from clim.engine.cpu_amp import probe_training_step
    from clim_test_utils import build_tiny_clim, random_batch

    model = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2,))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = random_batch(10)

    def draws() -> tuple:
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]

    state = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    expected = draws()
    torch.random.set_rng_state(state[0]), np.random.set_state(state[1]), random.setstate(state[2])
    probe_training_step(model, data, repeats=1, warmup=0)
    assert draws() == expected
    assert not model.training  # the mode it came in
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_train_tool_probes_the_runner_model_on_a_config_batch(clim_shapes, monkeypatch, capsys, tmp_path) -> None:
    """tools/train.py's probe: the built model, the first batch of the config's own training dataloader."""
    import clim.engine.cpu_amp as cpu_amp
    from mmengine.config import Config

    tool = load_train_tool()
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/tiny/clim_tiny_shapes.py'))
    cfg.train_dataloader.dataset.data_root = clim_shapes['root'] + '/'
    cfg.work_dir = str(tmp_path / 'work')
    seen = {}

    def fake_step_probe(model, batch, **kw):  # the timing itself is tested above; here: what gets timed
        seen.update(model=model, batch=batch)
        return CPUAmpProbe(fp32_s=0.2, bf16_s=0.1, what='step')

    monkeypatch.setattr(cpu_amp, 'probe_training_step', fake_step_probe)
    runner = tool.build_runner(cfg)
    args = argparse.Namespace(cpu_amp='auto', launcher='none', resume=None)
    rng = _rng_states()
    assert tool.cpu_bf16_wanted(args, cfg.work_dir, cfg, probe=tool.training_step_probe(runner, cfg)) is True
    # loading the batch ran the random crops of the pipeline: training must still draw what it would have
    assert _same_rng(rng, _rng_states())
    assert seen['model'] is runner.model
    assert len(seen['batch']['inputs']) == cfg.train_dataloader.batch_size == 32
    assert tuple(seen['batch']['inputs'][0].shape) == (3, 64, 64)
    assert 'step took 100 ms under bf16 autocast vs 200 ms in float32' in capsys.readouterr().out
