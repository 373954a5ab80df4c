"""CLIM with ``extraction_mode='v1'``: each tile's feature is the class token attending (in the last
block) only to that tile's patches, computed on the whole mosaic; it trains through the tiny config."""
from __future__ import annotations

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from clim.method.mosaic import build_mosaics, plan_mosaics
from clim_test_utils import REPO_ROOT, build_tiny_clim, random_batch, sgd_optimizer

GRID = 128 // 16  # patch grid of the 128 px mosaics


def _tile_masks(n: int) -> torch.Tensor:
    """(n * n, GRID, GRID): tile j (row j // n, column j % n) covers its GRID / n x GRID / n cells."""
    side = GRID // n
    masks = torch.zeros(n * n, GRID, GRID, dtype=torch.bool)
    for j in range(n * n):
        r, c = divmod(j, n)
        masks[j, r * side:(r + 1) * side, c * side:(c + 1) * side] = True
    return masks


def test_v1_pools_each_tile_by_mask_attention_on_its_mosaic(tiny_clip_cfg: dict) -> None:
    # 2x2 and 4x4 mosaics: tiles fall on whole patch cells, so the masks can be written by hand.
    model = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2, 4), extraction_mode='v1').eval()
    batch = model.data_preprocessor(random_batch(20 + 3, seed=2), True)
    images = batch['inputs']
    with torch.no_grad():
        got = model.image_features(images)
        expected = []
        for g in plan_mosaics(images.shape[0], (2, 4)).groups:
            mosaics = build_mosaics(images[g.start:g.stop], g.n, 128)
            expected.append(model.clip.mask_attention_pool(mosaics, [_tile_masks(g.n)] * g.count))
        expected.append(model.clip.encode_image(images[20:], normalize=True))
        v2 = build_tiny_clim(tiny_clip_cfg, mosaic_choices=(2, 4)).eval().image_features(images)
    expected = torch.cat(expected)
    assert got.shape == (23, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got[:20] - v2[:20]).abs().max() > 1e-2  # v1 is not the dense-map pooling


def test_tiny_config_trains_with_v1(tiny_clip_cfg: dict) -> None:
    """configs/tiny/clim_tiny_shapes.py with extraction_mode='v1': a training step gives a finite loss whose
    gradient reaches the unlocked blocks, and moves them."""
    from mmdet.registry import MODELS

    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / 'clim_tiny_shapes.py'))
    cfg.model.extraction_mode = 'v1'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.extraction_mode == 'v1'
    before = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    log_vars = model.train_step(random_batch(29, seed=4), OptimWrapper(sgd_optimizer(model, lr=0.1)))
    loss = float(torch.as_tensor(log_vars['loss_contrast']).detach())
    assert loss == loss and 0.0 < loss < 20.0
    moved = {k for k, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[k])}
    assert any('resblocks.1.' in k for k in moved) and any('resblocks.2.attn' in k for k in moved)
