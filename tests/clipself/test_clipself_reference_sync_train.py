"""The tiny CLIPSelf config with ``model_wrapper_cfg.sync=reference`` through torchrun + tools/train.py
(2 gloo processes): the log says which mode ran, rank 1 keeps its own replica next to each checkpoint and
it differs from rank 0's (the checkpoint), and a run interrupted after epoch 1 and resumed ends with both
replicas bit-identical to the uninterrupted run's."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from clim.engine import safe_torch_load
from clipself_test_utils import REPO_ROOT
from tests.helpers import torchrun

CONFIG = 'configs/tiny/clipself_tiny_shapes_patches.py'


def _train(root: str, work: Path, *extra: str) -> str:
    opts = [f'{k}.dataset.data_root={root}/' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    # No val loop: the replicas, not the metric, are under test here.
    opts += ['model_wrapper_cfg.sync=reference', 'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    res = torchrun(REPO_ROOT / 'tools' / 'train.py',
                   [CONFIG, '--launcher', 'pytorch', '--work-dir', str(work), *extra, '--cfg-options', *opts],
                   timeout=400)
    return res.stdout + res.stderr


def _states(work: Path, epoch: int, iters: int) -> tuple[dict, dict]:
    rank0 = safe_torch_load(work / f'epoch_{epoch}.pth', map_location='cpu')
    rank1 = safe_torch_load(work / 'replicas' / f'rank1_epoch{epoch}_iter{iters}.pth', map_location='cpu')
    return rank0, rank1


@pytest.fixture(scope='module')
def full_run(synthetic_dataset: dict, tmp_path_factory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp('clipself_reference_sync')
    return work, _train(synthetic_dataset['root'], work, '--cfg-options', 'train_cfg.max_epochs=2')


def test_reference_mode_is_logged_and_replicas_differ(full_run):
    work, log = full_run
    assert "gradient sync: 'reference' - 2 independent replicas" in log, log[-3000:]
    # 12 images / 2 ranks / batch 2 = 3 steps per epoch
    rank0, rank1 = _states(work, 2, 6)
    a, b = rank0['state_dict'], rank1['state_dict']
    assert a.keys() == b.keys()
    block = [k for k in a if '.resblocks.' in k]
    assert sum(not torch.equal(a[k], b[k]) for k in block) >= 5
    frozen = [k for k in a if k.startswith('clip.clip.visual.conv1') or k.startswith('clip.clip.transformer.')]
    assert frozen and all(torch.equal(a[k], b[k]) for k in frozen)
    assert torch.equal(a['teacher_digest'], b['teacher_digest'])
    # the optimizer moments are the replica's own
    sa, sb = rank0['optimizer']['state'], rank1['optimizer']['state']
    assert any(not torch.equal(sa[i]['exp_avg'], sb[i]['exp_avg']) for i in sa)
    # the export is rank 0's replica
    exported = torch.load(work / 'clip_latest.pt', weights_only=True)['meta']
    assert exported['epoch'] == 2 and exported['grad_sync'] == 'reference'


def test_reference_mode_resume_continues_every_replica(full_run, synthetic_dataset: dict, tmp_path: Path):
    work, _ = full_run
    part = tmp_path / 'resumed'
    _train(synthetic_dataset['root'], part, '--cfg-options', 'train_cfg.max_epochs=1')
    assert (part / 'replicas' / 'rank1_epoch1_iter3.pth').is_file() and not (part / 'epoch_2.pth').exists()
    # A copy that lost rank 1's replica refuses to resume (continuing from rank 0's would be another run).
    lost = tmp_path / 'lost'
    shutil.copytree(part, lost)
    (lost / 'replicas' / 'rank1_epoch1_iter3.pth').unlink()
    (lost / 'last_checkpoint').write_text(str(lost / 'epoch_1.pth'))
    with pytest.raises(AssertionError, match=r'rank1_epoch1_iter3\.pth is missing'):
        _train(synthetic_dataset['root'], lost, '--resume', '--cfg-options', 'train_cfg.max_epochs=2')

    log = _train(synthetic_dataset['root'], part, '--resume', '--cfg-options', 'train_cfg.max_epochs=2')
    assert "sync='reference' resume: ranks 1-1 continue their own replicas" in log, log[-3000:]
    for got, want in zip(_states(part, 2, 6), _states(work, 2, 6)):
        assert got['state_dict'].keys() == want['state_dict'].keys()
        assert all(torch.equal(got['state_dict'][k], want['state_dict'][k]) for k in want['state_dict'])
        for i, s in want['optimizer']['state'].items():
            assert torch.equal(got['optimizer']['state'][i]['exp_avg_sq'], s['exp_avg_sq'])
