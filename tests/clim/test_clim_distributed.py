"""Two gloo processes on CPU reach the same loss and the same updated weights as one process.

How the comparison is made exact: the mosaic split happens per rank, so 2 ranks x 29 images (one
2x2 + 3x3 + 4x4 mosaic each) and one process with 58 images (two mosaics of each size, in a
different order) would not compute the same features. The reference therefore runs in one process
the *same per-rank feature extraction* (CLIM.extract_features on each 29-image half), concatenates
the features in rank order and applies the global InfoNCE (world size 1) to all 58 pairs, then one
AdamW step. What the ranks must reproduce is then exactly the cross-rank machinery: the gather with
gradients (local loss + label offsets), DDP's gradient averaging and the optimizer step:
mean over ranks of the local losses == global loss, and updated weights equal to 1e-5.
A second copy takes one SGD step instead: Adam's first step is nearly blind to the gradient's scale,
SGD's weight change is the gradient, so a gradient summed instead of averaged over ranks shows.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clim.method.loss import infonce_loss
from clim_test_utils import build_tiny_clim, random_batch, sgd_optimizer, step_optimizer
from tests.helpers import torchrun

LOCAL = 29  # one group per rank: the smallest batch CLIM accepts


def test_two_ranks_equal_one_process(tmp_path: Path, tiny_clip_cfg: dict):
    batch = random_batch(2 * LOCAL, seed=3)
    data_path = tmp_path / 'batch.pt'
    torch.save(dict(images=batch['inputs'], samples=batch['data_samples'], clip_cfg=tiny_clip_cfg,
                    local_batch=LOCAL), data_path)
    worker = Path(__file__).with_name('dist_step_worker.py')
    res = torchrun(worker, [str(data_path), str(tmp_path)], timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(2)]

    # Single-process reference on the same global batch.
    model, loss = _reference_step(batch, tiny_clip_cfg, step_optimizer)

    assert ranks[0]['mean_loss'] == pytest.approx(loss.item(), abs=1e-5)
    assert ranks[0]['loss'] != pytest.approx(ranks[1]['loss'], abs=1e-6)  # the local losses do differ
    ref = model.state_dict()
    for k, v in ranks[0]['state'].items():
        torch.testing.assert_close(v, ref[k], atol=1e-5, rtol=0, msg=lambda m, k=k: f'{k}: {m}')
        torch.testing.assert_close(ranks[1]['state'][k], v, atol=0, rtol=0)
    # the step did move the trainable weights (so the comparison is not vacuous)
    init = build_tiny_clim(tiny_clip_cfg).state_dict()
    moved = [k for k, v in ref.items() if not torch.equal(v, init[k])]
    assert 'clip.clip.logit_scale' in moved and any('resblocks.2' in k for k in moved)

    # SGD: the weight change of the ranks is the single-process gradient, tensor by tensor, in scale too.
    sgd_model, _ = _reference_step(batch, tiny_clip_cfg, sgd_optimizer)
    sgd_ref = sgd_model.state_dict()
    checked = 0
    for k, v in ranks[0]['sgd_state'].items():
        expected, got = sgd_ref[k] - init[k], v - init[k]
        if not expected.abs().max() > 0:
            assert torch.equal(got, expected), k  # frozen weights stay frozen
            continue
        rel = ((got - expected).norm() / expected.norm()).item()
        assert rel < 1e-3, f'{k}: the weight change differs by {rel:.2e} of its size'
        checked += 1
    assert checked >= 10


def _reference_step(batch: dict, clip_cfg: dict, make_optimizer) -> tuple[torch.nn.Module, torch.Tensor]:
    """One process: each rank's feature extraction on its half, the global InfoNCE, one optimizer step."""
    model = build_tiny_clim(clip_cfg)
    opt = make_optimizer(model)
    feats = []
    for r in range(2):
        sl = slice(r * LOCAL, (r + 1) * LOCAL)
        half = dict(inputs=batch['inputs'][sl], data_samples=batch['data_samples'][sl])
        data = model.data_preprocessor(half, True)
        feats.append(model.extract_features(data['inputs'], model.caption_tokens(data['data_samples'])))
    img = torch.cat([f[0] for f in feats])
    txt = torch.cat([f[1] for f in feats])
    loss = infonce_loss(img, txt, model.clip.logit_scale.exp())
    loss.backward()
    opt.step()
    return model, loss
