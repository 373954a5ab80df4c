"""tools/check_ckpt.py: the table reports present / missing / bad per model, and a config's needs
decide the exit status."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from ckpt_test_utils import state_bytes, write_hub_cache, write_torchscript_state

REPO = Path(__file__).resolve().parents[2]
METACLIP_DIR = 'models--timm--vit_base_patch16_clip_224.metaclip_400m'
FVIT_METACLIP = str(REPO / 'configs/fvit/fvit_metaclip_vitb16_ovcoco.py')


def _tool():
    spec = importlib.util.spec_from_file_location('check_ckpt_tool', REPO / 'tools' / 'check_ckpt.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(ckpt_dir: Path, *args: str, capsys) -> tuple[int, str, dict]:
    rc = _tool().main(['--ckpt-dir', str(ckpt_dir), *args])
    out = capsys.readouterr()
    rc_json = _tool().main(['--ckpt-dir', str(ckpt_dir), '--json', *args])
    rows = json.loads(capsys.readouterr().out)
    assert rc_json == rc
    return rc, out.out + out.err, {r['name']: r for r in rows['models']}


def _write_metaclip(ckpt_dir: Path, tiny_clip_state) -> Path:
    sd, cfg = tiny_clip_state
    return write_hub_cache(ckpt_dir, 'timm/vit_base_patch16_clip_224.metaclip_400m', {
        'open_clip_config.json': dict(model_cfg=cfg), 'open_clip_model.safetensors': state_bytes(sd, 'safetensors')})


def test_empty_folder_all_missing(ckpt_dir: Path, capsys) -> None:
    rc, out, rows = _run(ckpt_dir, capsys=capsys)
    assert rc == 0  # no config: a report, not a gate
    assert all(r['status'] == 'missing' for r in rows.values())
    assert str(ckpt_dir / METACLIP_DIR) in rows['metaclip-vit-b-16']['path']
    assert 'dl.fbaipublicfiles.com/dinov2' in out and 'MISSING' in out
    # which configs use each model
    assert 'configs/fvit/fvit_metaclip_vitb16_ovcoco.py' in rows['metaclip-vit-b-16']['used_by']
    assert 'configs/clim/clim_metaclip_vitb16_coco.py' in rows['metaclip-vit-b-16']['used_by']
    assert 'configs/fvit/fvit_vitb16_ovcoco.py' in rows['openai-vit-b-16']['used_by']
    assert 'configs/fvit/fvit_vitb16_ovcoco.py' not in rows['metaclip-vit-b-16']['used_by']


def test_config_gate_missing_then_present(ckpt_dir: Path, tiny_clip_state, capsys) -> None:
    rc, out, rows = _run(ckpt_dir, '--config', FVIT_METACLIP, capsys=capsys)
    assert rc == 1
    assert rows['metaclip-vit-b-16']['needed'] and not rows['openai-vit-b-16']['needed']
    assert str(ckpt_dir / METACLIP_DIR) in out and 'hf download timm/vit_base_patch16_clip_224.metaclip_400m' in out
    assert 'needs missing or unreadable weights: metaclip-vit-b-16' in out

    _write_metaclip(ckpt_dir, tiny_clip_state)
    rc, out, rows = _run(ckpt_dir, '--config', FVIT_METACLIP, capsys=capsys)
    assert rc == 0, out
    r = rows['metaclip-vit-b-16']
    assert r['status'] == 'present' and r['size_ok'] is False  # tiny weights: flagged as a partial copy
    assert 'open_clip_model.safetensors' in r['detail'] and 'tensors' in r['detail']
    assert rows['dinov2-vit-b-14']['status'] == 'missing'  # not needed: does not fail the gate


def test_formats_are_checked(ckpt_dir: Path, tiny_clip_state, tiny_dinov2_state, capsys) -> None:
    sd, _ = tiny_clip_state
    write_torchscript_state(sd, ckpt_dir / 'ViT-B-16.pt', extra=dict(input_resolution=torch.tensor(64)))
    torch.save(tiny_dinov2_state, ckpt_dir / 'dinov2_vitb14_pretrain.pth')
    # Under UniMed-CLIP's name: a training checkpoint of a CLIP *without* its BERT text tower (wrong file).
    torch.save({'epoch': 10, 'name': 'unimed', 'state_dict': {f'module.{k}': v for k, v in sd.items()},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-5, 'params': [0, 1]}]}},
               ckpt_dir / 'unimed_clip_vit_b16.pt')
    (ckpt_dir / 'checkpoints').mkdir()
    # A wrong file under the ResNet-18 name (a DINOv2 state dict) and a truncated OpenAI L/14.
    torch.save(tiny_dinov2_state, ckpt_dir / 'checkpoints' / 'resnet18-f37072fd.pth')
    data = (ckpt_dir / 'ViT-B-16.pt').read_bytes()
    (ckpt_dir / 'ViT-L-14.pt').write_bytes(data[: len(data) // 2])
    rc, out, rows = _run(ckpt_dir, capsys=capsys)
    assert rows['openai-vit-b-16']['status'] == 'present'
    assert 'TorchScript archive' in rows['openai-vit-b-16']['detail']
    assert rows['dinov2-vit-b-14']['status'] == 'present'
    assert rows['unimed-clip-vit-b-16']['status'] == 'bad'
    assert 'text_encoder.transformer.embeddings.word_embeddings.weight' in rows['unimed-clip-vit-b-16']['detail']
    assert rows['resnet18']['status'] == 'bad' and 'conv1.weight' in rows['resnet18']['detail']
    assert rows['openai-vit-l-14']['status'] == 'bad'
    assert 'BAD' in out

    rc, out, rows = _run(ckpt_dir, '--config', str(REPO / 'configs/fvit/fvit_vitl14_ovcoco.py'), capsys=capsys)
    assert rc == 1 and 'openai-vit-l-14' in out


def test_incomplete_hub_cache_is_bad(ckpt_dir: Path, tiny_clip_state, capsys) -> None:
    entry = _write_metaclip(ckpt_dir, tiny_clip_state)
    for blob in (entry / 'blobs').iterdir():
        blob.unlink()
    rc, out, rows = _run(ckpt_dir, '--config', FVIT_METACLIP, capsys=capsys)
    assert rc == 1 and rows['metaclip-vit-b-16']['status'] == 'bad'
    assert 'dangling' in rows['metaclip-vit-b-16']['detail']


def test_unlisted_ckpt_path_of_a_config(ckpt_dir: Path, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / 'tiny_cfg.py'
    cfg.write_text("clip_cfg = dict(pretrained='ckpt/unused_helper.pt')\n"
                   "model = dict(type='FViT', backbone=dict(clip_cfg=dict(pretrained='ckpt/tiny_clip.pt')))\n")
    rc, out, _ = _run(ckpt_dir, '--config', str(cfg), capsys=capsys)
    assert rc == 1 and str(ckpt_dir / 'tiny_clip.pt') in out
    assert 'unused_helper' not in out  # top-level helper variables are not requirements
    (ckpt_dir / 'tiny_clip.pt').write_bytes(b'x')
    rc, out, _ = _run(ckpt_dir, '--config', str(cfg), capsys=capsys)
    assert rc == 0, out


def test_cli_exit_status(ckpt_dir: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / 'tools' / 'check_ckpt.py'), '--ckpt-dir', str(ckpt_dir),
                           '--quick', '--config', FVIT_METACLIP], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'metaclip-vit-b-16' in proc.stderr and METACLIP_DIR in proc.stdout


def test_transformers_rows_present_missing(ckpt_dir: Path, tiny_unimed, tiny_biomedclip, tiny_clipseg_cache,
                                           capsys) -> None:
    """UniMed-CLIP, BiomedCLIP and CLIPSeg in their release formats are present; without the BiomedBERT
    entry (text-tower config + tokenizer) the two CLIPs are missing, with the command that gets it."""
    clipseg_cfg = str(REPO / 'configs/region_eval/region_eval_clipseg_coco.py')
    rc, out, rows = _run(ckpt_dir, '--config', clipseg_cfg, capsys=capsys)
    assert rc == 0, out
    for name in ('unimed-clip-vit-b-16', 'biomedclip', 'clipseg-rd64-refined'):
        assert rows[name]['status'] == 'present', rows[name]
        assert rows[name]['loader'] in ('open_clip+transformers', 'transformers')
    assert 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract: snapshot' in rows['biomedclip']['detail']
    assert 'model.safetensors' in rows['clipseg-rd64-refined']['detail']
    assert rows['clipseg-rd64-refined']['needed'] and 'configs/region_eval/region_eval_clipseg_coco.py' in \
        rows['clipseg-rd64-refined']['used_by']

    shutil.rmtree(ckpt_dir / 'models--microsoft--BiomedNLP-BiomedBERT-base-uncased-abstract')
    shutil.rmtree(ckpt_dir / 'models--CIDAS--clipseg-rd64-refined')
    rc, out, rows = _run(ckpt_dir, '--config', clipseg_cfg, capsys=capsys)
    assert rc == 1 and 'needs missing or unreadable weights: clipseg-rd64-refined' in out
    assert rows['clipseg-rd64-refined']['status'] == 'missing'
    for name in ('unimed-clip-vit-b-16', 'biomedclip'):
        assert rows[name]['status'] == 'missing'
        assert 'hf download microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract config.json' in rows[name]['detail']
