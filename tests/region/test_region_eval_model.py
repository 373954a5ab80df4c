"""The region evaluator under the reference protocol: pipeline crops, ViLD class embeddings, the table."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from clim.models import save_clip_checkpoint
from clim.models.templates import encode_vild_class_names
from region_test_utils import region_dataset
from tests.helpers import TINY_CLIP_CFG, run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def evaluator():
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(dict(
        type='RegionRecognition', clip=dict(type='CLIPModel', model_cfg=copy.deepcopy(TINY_CLIP_CFG)),
        classifier=dict(with_crops=True, templates='vild'),
        data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=128, pad_size_divisor=16))).eval()


def test_pipeline_crops_and_vild_classes_by_hand(evaluator, panoptic_split: dict) -> None:
    from mmengine.dataset import pseudo_collate

    ds = region_dataset(panoptic_split, 'reference')
    batch = pseudo_collate([ds[0], ds[1]])
    with torch.no_grad():
        samples = evaluator.test_step(batch)
        clip = evaluator.clip
        text = encode_vild_class_names(clip, ds.metainfo['category_names'])
        for s in samples:
            crops = torch.stack([_reference_crop_transform(c) for c in s.gt_crops])
            expect = (clip.encode_image(crops) @ text.t()).topk(4, dim=1).indices
            assert torch.equal(s.pred_crop_topk, expect)
            assert s.pred_box_topk.shape == s.pred_mask_topk.shape == (len(s.gt_labels), 4)
    assert [len(s.gt_labels) for s in samples] == [3, 100]


def _reference_crop_transform(crop: torch.Tensor) -> torch.Tensor:
    """torchvision's ToTensor + Normalize with OpenAI CLIP's statistics, on the letterboxed PIL crop."""
    from PIL import Image
    from torchvision import transforms as T

    pil = Image.fromarray(crop.permute(1, 2, 0).numpy())
    return T.Compose([T.ToTensor(), T.Normalize((0.48145466, 0.4578275, 0.40821073),
                                                (0.26862954, 0.26130258, 0.27577711))])(pil)


def test_crop_normalization_is_bit_identical_to_torchvision() -> None:
    from clim.evaluation.region_model import normalize_crops
    from clim.method.data_preprocessor import CLIMDataPreprocessor

    pre = CLIMDataPreprocessor()
    crops = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    got = normalize_crops(crops, pre.mean, pre.std)
    assert torch.equal(got, torch.stack([_reference_crop_transform(c) for c in crops]))


def test_clim_ovd_crops_are_still_cut_from_the_input(evaluator, panoptic_split: dict) -> None:
    from mmengine.dataset import pseudo_collate

    batch = pseudo_collate([region_dataset(panoptic_split, 'clim-ovd')[0]])
    evaluator.classifier.crop_size = 64
    with torch.no_grad():
        (s,) = evaluator.test_step(batch)
        inputs = evaluator.data_preprocessor(copy.deepcopy(batch))['inputs']
        feats = evaluator.classifier._crops(evaluator.clip, inputs[0], s.gt_bboxes)
        text = encode_vild_class_names(evaluator.clip, s.metainfo['category_names'])
    assert torch.equal(s.pred_crop_topk, (feats @ text.t()).topk(4, dim=1).indices)


def test_test_tool_prints_one_table_naming_the_protocol(panoptic_split: dict, tmp_path: Path) -> None:
    from clim.models import CLIPModel

    torch.manual_seed(0)
    clip = CLIPModel(model_cfg=copy.deepcopy(TINY_CLIP_CFG))
    ckpt = save_clip_checkpoint(tmp_path / 'tiny.pt', clip, clip.clip_arch)
    res = run_tool(['tools/test.py', 'configs/tiny/region_eval_tiny_shapes.py', '--work-dir',
                    str(tmp_path / 'eval'), '--cfg-options', f'model.clip.pretrained={ckpt}',
                    f'test_dataloader.dataset.data_root={panoptic_split["root"]}'], cwd=REPO_ROOT)
    out = res.stdout + res.stderr
    assert out.count("region recognition mAcc (%), protocol 'reference', 103 regions") == 1, out[-3000:]
    table = out[out.index('region recognition mAcc'):].splitlines()
    assert re.match(r'\s+things top-1\s+things top-5\s+stuff top-1\s+stuff top-5\s+all top-1\s+all top-5$',
                    table[1])
    metrics = {k: float(v) for k, v in re.findall(r"'(region_reference/\w+)': ([0-9.]+)", res.stdout)}
    assert len(metrics) == 18  # boxes / masks / crops x things / stuff / all x top-1 / top-5
    for row, kind in zip(table[2:5], ('box', 'mask', 'crop')):
        cells = [float(v) for v in row.split()[1:]]
        expect = [metrics[f'region_reference/{kind}_top{k}_{s}'] for s in ('things', 'stuff', 'all') for k in (1, 5)]
        np.testing.assert_allclose(cells, expect, atol=0.006)


@pytest.mark.parametrize('mode', ['v2', 'plain'])
def test_boxes_and_masks_are_scored_on_the_dense_map_of_the_chosen_mode(panoptic_split: dict, mode: str) -> None:
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate

    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='RegionRecognition', clip=dict(type='CLIPModel', model_cfg=copy.deepcopy(TINY_CLIP_CFG)),
        classifier=dict(mode=mode, templates='short'),
        data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=128, pad_size_divisor=16))).eval()
    batch = pseudo_collate([region_dataset(panoptic_split, 'clim-ovd')[0]])
    with torch.no_grad():
        (s,) = model.test_step(batch)
        inputs = model.data_preprocessor(copy.deepcopy(batch))['inputs']
        clip = model.clip
        text = clip.encode_class_names(list(s.metainfo['classes']), templates='short').float()
        dense = clip.dense_features(inputs, mode=mode)
        other = clip.dense_features(inputs, mode='plain' if mode == 'v2' else 'v2')
        boxes = [s.gt_bboxes.float()]
        k = s.pred_box_topk.shape[1]
        expect = (clip.pool_boxes(dense, boxes, normalized=False).float() @ text.t()).topk(k, dim=1).indices
        assert torch.equal(s.pred_box_topk, expect)
        # the two maps differ on this model: scoring on the other one would not pass the line above
        assert not torch.allclose(dense, other)
