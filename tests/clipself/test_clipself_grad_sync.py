"""Both gradient-sync modes of ``GradSyncDataParallel`` with 2 gloo processes (torchrun), for CLIM and CLIPSelf.

Each rank starts from its own seed; the wrapper must give both rank 0's weights and (CLIPSelf) rank 0's
teacher. After one SGD step (weight change = -lr * gradient, so the gradient each rank used shows):

- ``synced``: the replicas agree bit for bit, and equal one process stepping on the mean of the ranks'
  losses (CLIPSelf) / the global InfoNCE over both halves (CLIM);
- ``reference``: the replicas differ; CLIPSelf's rank r equals one process stepping on half r alone;
  CLIM's rank r equals one process stepping on d(L_0 + L_1)/d(features of half r), the other half's
  features held fixed (its loss still scores against every rank's features, and the other rank's loss
  sends its gradient through the gather), with the other rank's ``logit_scale`` held fixed too.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clim.method.loss import infonce_loss
from clipself_test_utils import build_tiny_clipself, random_distill_batch
from tests.clim.clim_test_utils import build_tiny_clim, random_batch, sgd_optimizer
from tests.helpers import TINY_CLIP_CFG, torchrun

CLIM_LOCAL = 29  # the smallest CLIM batch: one 2x2 + 3x3 + 4x4 mosaic per rank
CLIPSELF_LOCAL = 2
LR = 0.5
SEED = 10  # rank 0's seed in the worker


@pytest.fixture(scope='module')
def ranks(tmp_path_factory) -> tuple[list[dict], dict]:
    tmp = tmp_path_factory.mktemp('grad_sync')
    batches = dict(clim=random_batch(2 * CLIM_LOCAL, seed=3),
                   clipself=random_distill_batch(counts=(3, 2, 2, 4), seed=5))
    torch.save(dict(**batches, clim_local=CLIM_LOCAL, clipself_local=CLIPSELF_LOCAL, lr=LR,
                    clip_cfg=TINY_CLIP_CFG), tmp / 'batch.pt')
    res = torchrun(Path(__file__).with_name('dist_sync_worker.py'), [str(tmp / 'batch.pt'), str(tmp)], timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return [torch.load(tmp / f'rank{r}.pt', weights_only=True) for r in range(2)], batches


def _half(batch: dict, r: int, local: int) -> dict:
    sl = slice(r * local, (r + 1) * local)
    return dict(inputs=batch['inputs'][sl], data_samples=batch['data_samples'][sl])


def _sgd_step(model: torch.nn.Module, loss_fn) -> dict:
    opt = sgd_optimizer(model, lr=LR)
    loss_fn(model).backward()
    opt.step()
    return model.state_dict()


def _assert_same_change(got: dict, want: dict, init: dict, min_moved: int = 5) -> None:
    """``got`` and ``want`` moved every tensor from ``init`` by the same amount (relative 1e-4)."""
    moved = 0
    for k, w in want.items():
        expected, change = w - init[k], got[k] - init[k]
        if not expected.abs().max() > 0:
            assert torch.equal(change, expected), f'{k} (frozen) moved'
            continue
        rel = ((change - expected).norm() / expected.norm()).item()
        assert rel < 1e-4, f'{k}: the weight change differs by {rel:.2e} of its size'
        moved += 1
    assert moved >= min_moved


def _trainable_differ(a: dict, b: dict, init: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], init[k]) and not torch.equal(a[k], b[k])]


# -- CLIPSelf -----------------------------------------------------------------------------------------
def _clipself_loss(batch: dict, halves: list[int]):
    def loss(model):
        losses = []
        for r in halves:
            data = model.data_preprocessor(_half(batch, r, CLIPSELF_LOCAL), True)
            losses.append(model.loss(data['inputs'], data['data_samples'])['loss_cosine'])
        return sum(losses) / len(losses)
    return loss


def test_clipself_teacher_is_rank0s_on_every_rank(ranks):
    out, _ = ranks
    want = build_tiny_clipself(TINY_CLIP_CFG, seed=SEED).teacher.state_dict()
    other = build_tiny_clipself(TINY_CLIP_CFG, seed=SEED + 1).teacher.state_dict()
    assert any(not torch.equal(want[k], other[k]) for k in want)  # the seeds do give other teachers
    for sync in ('synced', 'reference'):
        for r in range(2):
            teacher = out[r][f'clipself_{sync}']['teacher']
            assert all(torch.equal(teacher[k], want[k]) for k in want), (sync, r)
            assert torch.equal(out[r][f'clipself_{sync}']['state']['teacher_digest'],
                               out[0]['clipself_synced']['state']['teacher_digest'])


def _assert_synced_step(out: list[dict], key: str, build, loss_fn) -> None:
    """Both ranks hold the same weights: those of one process taking the SGD step on ``loss_fn``."""
    a, b = out[0][key]['state'], out[1][key]['state']
    assert all(torch.equal(a[k], b[k]) for k in a)
    want = _sgd_step(build(TINY_CLIP_CFG, seed=SEED), loss_fn)
    _assert_same_change(a, want, build(TINY_CLIP_CFG, seed=SEED).state_dict())


def test_clipself_synced_replicas_agree_and_average(ranks):
    out, batches = ranks
    _assert_synced_step(out, 'clipself_synced', build_tiny_clipself, _clipself_loss(batches['clipself'], [0, 1]))


def test_clipself_reference_replicas_train_on_their_own_shard(ranks):
    out, batches = ranks
    init = build_tiny_clipself(TINY_CLIP_CFG, seed=SEED).state_dict()
    a, b = out[0]['clipself_reference']['state'], out[1]['clipself_reference']['state']
    assert len(_trainable_differ(a, b, init)) >= 5
    for r, got in enumerate((a, b)):
        want = _sgd_step(build_tiny_clipself(TINY_CLIP_CFG, seed=SEED), _clipself_loss(batches['clipself'], [r]))
        _assert_same_change(got, want, init)


# -- CLIM ---------------------------------------------------------------------------------------------
def _clim_features(model, batch: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    feats = []
    for r in range(2):
        data = model.data_preprocessor(_half(batch, r, CLIM_LOCAL), True)
        feats.append(model.extract_features(data['inputs'], model.caption_tokens(data['data_samples'])))
    return feats


def _clim_rank_losses(model, batch: dict, grad_rank: int | None) -> list[torch.Tensor]:
    """Each rank's local InfoNCE against all ranks' features; with ``grad_rank``, only that rank's
    features and logit_scale carry gradients (the other replica's are constants)."""
    feats = _clim_features(model, batch)
    if grad_rank is not None:
        feats = [(i, t) if r == grad_rank else (i.detach(), t.detach()) for r, (i, t) in enumerate(feats)]
    all_img = torch.cat([f[0] for f in feats])
    all_txt = torch.cat([f[1] for f in feats])
    scale = model.clip.logit_scale.exp()
    return [infonce_loss(img, txt, scale if grad_rank in (None, r) else scale.detach(), all_img, all_txt,
                         label_offset=r * CLIM_LOCAL) for r, (img, txt) in enumerate(feats)]


def test_clim_synced_replicas_agree_and_average(ranks):
    out, batches = ranks
    _assert_synced_step(out, 'clim_synced', build_tiny_clim,
                        lambda m: sum(_clim_rank_losses(m, batches['clim'], None)) / 2)


def test_clim_reference_replicas_differ_and_still_use_all_ranks_negatives(ranks):
    out, batches = ranks
    init = build_tiny_clim(TINY_CLIP_CFG, seed=SEED).state_dict()
    a, b = out[0]['clim_reference']['state'], out[1]['clim_reference']['state']
    assert len(_trainable_differ(a, b, init)) >= 5
    with torch.no_grad():
        model = build_tiny_clim(TINY_CLIP_CFG, seed=SEED)
        gathered = _clim_rank_losses(model, batches['clim'], None)
        own_only = []
        for img, txt in _clim_features(model, batches['clim']):
            own_only.append(infonce_loss(img, txt, model.clip.logit_scale.exp()))
    for r in range(2):
        # the rank's loss scores its 29 rows against all 58 columns, not against its own 29 only
        assert out[r]['clim_reference']['loss'] == pytest.approx(gathered[r].item(), abs=1e-5)
        assert abs(out[r]['clim_reference']['loss'] - own_only[r].item()) > 1e-3
        want = _sgd_step(build_tiny_clim(TINY_CLIP_CFG, seed=SEED),
                         lambda m, r=r: sum(_clim_rank_losses(m, batches['clim'], r)))
        _assert_same_change((a, b)[r], want, init)
