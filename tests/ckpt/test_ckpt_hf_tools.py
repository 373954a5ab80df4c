"""The user tools on the Hugging Face text-tower CLIPs (UniMed-CLIP, BiomedCLIP), with the tiny random-weight
fixtures of tests/ckpt:

- ``tools/gen_text_embeddings.py`` builds them by zoo name or from a CLIM export of one, and writes exactly
  what ``encode_class_names`` gives; the OpenAI / open_clip inputs keep their bit-identical output;
- region recognition (``configs/region_eval/region_eval_vitb16_coco.py`` through ``tools/test.py``) evaluates a CLIM
  export of either with nothing but ``model.clip.pretrained`` set.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

import clim  # noqa: F401  (registers the models)
from clim.models import CLIPModel, HFTextCLIPModel, get_class_names, prompt_name, save_clip_checkpoint
from tests.helpers import REPO_ROOT, run_tool

CLASSES = ['cat', 'dog', 'chest x ray', 'brain scan']
REGION_CONFIG = REPO_ROOT / 'configs' / 'region_eval' / 'region_eval_vitb16_coco.py'


def _gen_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location('gen_text_embeddings_tool',
                                                  REPO_ROOT / 'tools' / 'gen_text_embeddings.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(params=['unimed', 'biomedclip'])
def hf_zoo(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """``{'name' (zoo name), 'zoo' (its ZooModel config), 'args' (the tool's arguments for it)}`` of each tiny
    HF text-tower CLIP in ckpt/. The tiny UniMed-CLIP has a smaller ViT than the entry's ViT-B/16: the tool
    takes it as ``--model-cfg`` (a JSON file), as a user overriding the architecture would."""
    if request.param == 'unimed':
        _, cfg = request.getfixturevalue('tiny_unimed')
        cfg_file = tmp_path / 'unimed_tiny.json'
        cfg_file.write_text(json.dumps(cfg))
        return dict(name='unimed-clip-vit-b-16', zoo=dict(type='ZooModel', name='unimed-clip-vit-b-16', model_cfg=cfg),
                    args=['--model', 'unimed-clip-vit-b-16', '--model-cfg', str(cfg_file)])
    request.getfixturevalue('tiny_biomedclip')
    return dict(name='biomedclip', zoo=dict(type='ZooModel', name='biomedclip'), args=['--model', 'biomedclip'])


def _direct(model: CLIPModel, names: list[str], templates: str) -> np.ndarray:
    with torch.no_grad():
        return model.eval().encode_class_names(names, templates=templates).float().numpy()


def _hf_export(zoo: dict, path: Path) -> tuple[HFTextCLIPModel, Path]:
    """A CLIM export of the zoo model whose text projection differs from the zoo weights (so embeddings from
    the export and from the zoo file cannot be confused)."""
    model = MODELS.build(copy.deepcopy(zoo)).eval()
    with torch.no_grad():
        for p in model.clip.text.proj.parameters():
            p.mul_(-1.5)
    return model, save_clip_checkpoint(path, model, model.clip_arch, meta=dict(epoch=1))


# ------------------------------------------------------------------------------------------------
# tools/gen_text_embeddings.py
# ------------------------------------------------------------------------------------------------
def test_gen_text_embeddings_by_zoo_name(hf_zoo: dict, tmp_path: Path) -> None:
    class_file = tmp_path / 'classes.txt'
    class_file.write_text('\n'.join(CLASSES) + '\n')
    out = _gen_tool().main([*hf_zoo['args'], '--class-file', str(class_file), '--templates', 'short',
                            '--background', '--out', str(tmp_path / 'emb.npy')])
    emb = np.load(out)
    model = MODELS.build(copy.deepcopy(hf_zoo['zoo']))
    assert isinstance(model, HFTextCLIPModel)
    expected = _direct(model, CLASSES + ['background'], 'short')
    assert emb.dtype == np.float32 and emb.shape == expected.shape == (5, model.embed_dim)
    assert np.array_equal(emb, expected)


def test_gen_text_embeddings_from_hf_export(hf_zoo: dict, tmp_path: Path) -> None:
    """A CLIM export alone (through the real command line), or with its zoo name: the export's weights."""
    model, export = _hf_export(hf_zoo['zoo'], tmp_path / 'clip_latest.pt')
    expected = _direct(model, CLASSES, 'short')
    original = _direct(MODELS.build(copy.deepcopy(hf_zoo['zoo'])), CLASSES, 'short')
    assert not np.allclose(expected, original, atol=1e-3)  # the export is told apart from the zoo weights
    common = ['--class-file', str(tmp_path / 'classes.txt'), '--templates', 'short']
    (tmp_path / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')

    run_tool(['tools/gen_text_embeddings.py', '--pretrained', str(export), *common,
              '--out', str(tmp_path / 'cli.npy')], cwd=REPO_ROOT)
    np.testing.assert_allclose(np.load(tmp_path / 'cli.npy'), expected, rtol=0, atol=1e-6)
    out = _gen_tool().main(['--model', hf_zoo['name'], '--pretrained', str(export), *common,
                            '--out', str(tmp_path / 'zoo.npy')])
    assert np.array_equal(np.load(out), expected)


def test_gen_text_embeddings_open_clip_inputs_unchanged(ckpt_dir: Path, tiny_clip_state: tuple,
                                                        tmp_path: Path) -> None:
    """The OpenAI / open_clip path still builds a plain CLIPModel, and writes exactly its embeddings."""
    from ckpt_test_utils import write_torchscript_state

    sd, cfg = tiny_clip_state
    openai = write_torchscript_state(sd, ckpt_dir / 'ViT-B-16.pt', extra=dict(
        input_resolution=torch.tensor(64), context_length=torch.tensor(32), vocab_size=torch.tensor(49408)))
    tool = _gen_tool()
    built = tool.build_clip(model_cfg=cfg, pretrained=str(openai))
    assert type(built) is CLIPModel
    out = tool.main(['--model-cfg', json.dumps(cfg), '--pretrained', str(openai), '--classes', 'ov_coco_65',
                     '--templates', 'short', '--out', str(tmp_path / 'openai.npy')])
    names = [prompt_name(n) for n in get_class_names('ov_coco_65')]
    assert np.array_equal(np.load(out), _direct(CLIPModel(model_cfg=cfg, pretrained=str(openai)), names, 'short'))


def test_gen_text_embeddings_rejects_what_it_cannot_encode(ckpt_dir: Path, capsys) -> None:
    tool = _gen_tool()
    for model, match in (('dinov2-vit-b-14', 'not a CLIP'), ('clipseg-rd64-refined', 'not a CLIP'),
                         ('no-such-model', 'unknown zoo model')):
        with pytest.raises(SystemExit, match=match):
            tool.main(['--model', model, '--classes', 'coco_80', '--out', str(ckpt_dir / 'x.npy')])
    with pytest.raises(SystemExit):
        tool.main(['--model', 'biomedclip', '--model-name', 'ViT-B-16', '--classes', 'coco_80', '--out', 'x.npy'])
    assert 'drop --model-name' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# region recognition of an HF export (configs/region_eval/region_eval_vitb16_coco.py)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def region_shapes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """4 val images of 64 px with instance regions (the split region recognition reads)."""
    from ovd_demo.shapes import generate_shapes_dataset

    return generate_shapes_dataset(tmp_path_factory.mktemp('hf_region_shapes'), num_train=1, num_val=4,
                                   image_size=64, seed=0)


def _region_config(path: Path, data_root: str) -> Path:
    """The real region-eval config with only the data swapped: the shapes val split, longer side 128 (the
    model, its CLIP config and the classifier are the real config's)."""
    pipeline = [dict(type='LoadRegionAnnotations'), dict(type='ResizeLongestSide', size=128),
                dict(type='PackRegionInputs', mask_stride=16)]
    dataset = dict(_delete_=True, type='RegionRecognitionDataset', data_root=data_root,
                   ann_file='annotations/instances_val.json', img_prefix='images/val/', pipeline=pipeline)
    path.write_text(f"_base_ = ['{REGION_CONFIG}']\n"
                    f'model = dict(data_preprocessor=dict(pad_size=128))\n'
                    f'test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, '
                    f'dataset={dataset!r})\n')
    return path


def test_region_eval_of_hf_export_through_test_tool(hf_zoo: dict, region_shapes: dict, tmp_path: Path) -> None:
    model, export = _hf_export(hf_zoo['zoo'], tmp_path / 'clip_latest.pt')
    config = _region_config(tmp_path / 'region_eval.py', region_shapes['root'] + '/')
    cfg = Config.fromfile(str(config))
    assert cfg.model.clip.type == 'CLIPModel' and cfg.model.clip.model_name == 'ViT-B-16'  # the real config's
    cfg.model.clip.pretrained = str(export)
    evaluator = MODELS.build(cfg.model)
    assert type(evaluator.clip) is HFTextCLIPModel
    state = evaluator.clip.clip.state_dict()
    assert all(torch.equal(state[k], v) for k, v in model.clip.state_dict().items())

    res = run_tool(['tools/test.py', str(config), '--work-dir', str(tmp_path / 'eval'),
                    '--cfg-options', f'model.clip.pretrained={export}'], cwd=REPO_ROOT)
    top1 = re.search(r"'region/box_top1_things': (\d+(\.\d+)?)", res.stdout)
    assert top1 and 0.0 <= float(top1.group(1)) <= 100.0, res.stdout[-3000:]
    assert re.search(r"'region/crop_top5_all': \d", res.stdout)


def test_region_eval_keeps_clipmodel_for_open_clip_weights(tiny_clip_cfg: dict) -> None:
    evaluator = MODELS.build(dict(type='RegionRecognition', clip=dict(type='CLIPModel', model_cfg=tiny_clip_cfg)))
    assert type(evaluator.clip) is CLIPModel


# ------------------------------------------------------------------------------------------------
# ckpt/README.md agrees with tools/check_ckpt.py
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['unimed-clip-vit-b-16', 'biomedclip', 'clipseg-rd64-refined'])
def test_readme_used_by_lists_the_configs(name: str) -> None:
    """The "used by" cell names exactly the configs check_ckpt.py finds for the row."""
    from clim.models import zoo_report

    readme = (REPO_ROOT / 'ckpt' / 'README.md').read_text()
    rows = [ln for ln in readme.splitlines() if ln.startswith(f'| `{name}` |')]
    assert len(rows) == 1, name
    used_by = rows[0].split(' | ')[4]
    assert set(re.findall(r'`(configs/[^`]+\.py)`', used_by)) == set(zoo_report.configs_using()[name]) != set()
