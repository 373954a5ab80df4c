"""The vision-only zoo rows plug into an mmdet detector as its backbone (by zoo name)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS

from ckpt_test_utils import TINY_DINOV2_KWARGS

import clim  # noqa: F401
import ovdet  # noqa: F401


def _faster_rcnn(backbone: dict, in_channels: list[int], pyramid: dict | None = None) -> torch.nn.Module:
    import mmdet
    from mmengine.config import Config
    from mmdet.utils import register_all_modules

    register_all_modules()
    path = Path(mmdet.__file__).parent / '.mim' / 'configs' / 'faster_rcnn' / 'faster-rcnn_r50_fpn_1x_coco.py'
    if not path.is_file():
        pytest.skip('mmdet was installed without its configs')
    cfg = Config.fromfile(str(path)).model
    cfg.backbone = backbone
    cfg.neck.in_channels = in_channels
    cfg.neck.out_channels = 32
    if pyramid is not None:  # single-stride ViT tokens -> strides 4-32 before the FPN
        cfg.neck = [pyramid, cfg.neck]
    cfg.rpn_head.in_channels = cfg.rpn_head.feat_channels = 32
    cfg.roi_head.bbox_roi_extractor.out_channels = 32
    cfg.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64, num_classes=3)
    return MODELS.build(cfg)


@pytest.mark.parametrize('name', ['resnet18', 'dinov2-vit-b-14'])
def test_zoo_backbone_trains_in_faster_rcnn(ckpt_dir: Path, tiny_dinov2_state: dict, name: str) -> None:
    from mmdet.testing import demo_mm_inputs

    if name == 'resnet18':
        import torchvision
        (ckpt_dir / 'checkpoints').mkdir()
        sd = torchvision.models.resnet18(weights=None).state_dict()
        torch.save(sd, ckpt_dir / 'checkpoints' / 'resnet18-f37072fd.pth')
        backbone, chans, pyramid = dict(type='ZooModel', name=name), [64, 128, 256, 512], None
        key, expected = 'layers.3.1.conv2.weight', sd['layer4.1.conv2.weight']
    else:
        torch.save(tiny_dinov2_state, ckpt_dir / 'dinov2_vitb14_pretrain.pth')
        backbone = dict(type='ZooModel', name=name, model_kwargs=TINY_DINOV2_KWARGS, out_indices=(0, 1, 2, 3))
        chans = [TINY_DINOV2_KWARGS['embed_dim']] * 4
        pyramid = dict(type='SimplePyramid', in_channels=chans[0], norm_cfg=dict(type='BN'))
        key, expected = 'vit.blocks.2.attn.qkv.weight', tiny_dinov2_state['blocks.2.attn.qkv.weight']
    model = _faster_rcnn(backbone, chans, pyramid)
    model.init_weights()  # must leave the loaded weights alone
    torch.testing.assert_close(model.backbone.state_dict()[key], expected)
    model.train()
    packed = demo_mm_inputs(2, [[3, 64, 64]] * 2, num_classes=3)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v) for k, v in losses.items()
                if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    fpn = model.neck if pyramid is None else model.neck[1]
    assert fpn.fpn_convs[0].conv.weight.grad is not None
