"""--amp on a CPU is never a silent slowdown: bf16 autocast only where it measured faster, with the numbers."""
from __future__ import annotations

import argparse
import importlib.util
import sys

import pytest

from clim.engine.cpu_amp import CPUAmpProbe, probe_cpu_bf16
from clim_test_utils import REPO_ROOT


def load_train_tool():
    tools = str(REPO_ROOT / 'tools')
    if tools not in sys.path:
        sys.path.insert(0, tools)  # tools/train.py imports its sibling _runner_common
    spec = importlib.util.spec_from_file_location('train_tool', REPO_ROOT / 'tools' / 'train.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


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
