"""tools/train.py --resume PATH on the tiny F-ViT: one epoch, then a resumed second epoch, ends with the
weights and optimizer state of an uninterrupted two-epoch run (sampler order, pipeline randomness,
RPN / RoI sampling and the lr schedule all continue where they stopped)."""
from __future__ import annotations

from pathlib import Path

import torch

from clim.engine import safe_torch_load
from fvit_test_utils import REPO_ROOT, TINY_CONFIG, run_tool, to_pre_neck_layout

# A fixed seed (the tiny config leaves it random) and one val loop, at the end.
OPTIONS = ['randomness.seed=0', 'train_cfg.val_interval=100']


def _train(root: Path, work: str, epochs: int, *extra: str) -> Path:
    run_tool([str(REPO_ROOT / 'tools' / 'train.py'), str(TINY_CONFIG), '--work-dir', str(root / work), *extra,
              '--cfg-options', f'train_cfg.max_epochs={epochs}', *OPTIONS], cwd=root)
    return root / work


def _assert_same_weights_and_optimizer(expected: dict, got: dict) -> None:
    differ = [k for k, v in expected['state_dict'].items() if not torch.equal(v, got['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ after resume, e.g. {differ[:5]}'
    for key, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(got['optimizer']['state'][key][name])), \
                (key, name)


def test_resume_path_matches_uninterrupted_run(fvit_workspace: dict, tmp_path: Path) -> None:
    root = fvit_workspace['root']
    full = _train(root, 'resume_full', 2)
    part = _train(root, 'resume_part', 1)
    resumed = _train(root, 'resume_resumed', 2, '--resume', str(part / 'epoch_1.pth'))
    assert not (resumed / 'epoch_1.pth').exists()  # it started from the given checkpoint

    expected = safe_torch_load(full / 'epoch_2.pth', map_location='cpu')
    got = safe_torch_load(resumed / 'epoch_2.pth', map_location='cpu')
    assert got['meta']['epoch'] == 2 and got['meta']['iter'] == expected['meta']['iter']
    _assert_same_weights_and_optimizer(expected, got)
    first = safe_torch_load(part / 'epoch_1.pth', map_location='cpu')['state_dict']
    assert any(not torch.equal(first[k], v) for k, v in got['state_dict'].items())  # epoch 2 did train


def test_resume_from_an_old_layout_checkpoint_matches(fvit_workspace: dict) -> None:
    """A checkpoint written before the adapters moved into the neck (``backbone.adapters.*``, FPN under
    ``neck.*``) resumes to the same weights and optimizer state as the new-layout one."""
    root = fvit_workspace['root']
    part = _train(root, 'resume_old_part', 1)
    new = safe_torch_load(part / 'epoch_1.pth', map_location='cpu')
    old = dict(new, state_dict=to_pre_neck_layout(new['state_dict']))
    assert any(k.startswith('backbone.adapters.') for k in old['state_dict'])
    (root / 'resume_old_ckpt').mkdir()
    torch.save(old, root / 'resume_old_ckpt' / 'epoch_1.pth')
    from_new = _train(root, 'resume_old_from_new', 2, '--resume', str(part / 'epoch_1.pth'))
    from_old = _train(root, 'resume_old_from_old', 2, '--resume', str(root / 'resume_old_ckpt' / 'epoch_1.pth'))
    expected = safe_torch_load(from_new / 'epoch_2.pth', map_location='cpu')
    got = safe_torch_load(from_old / 'epoch_2.pth', map_location='cpu')
    assert got['state_dict'].keys() == expected['state_dict'].keys()
    _assert_same_weights_and_optimizer(expected, got)
