"""Two gloo processes train the tiny F-ViT to the same weights as one process.

Each rank holds one image of a two-image batch. BatchNorm normalizes per rank (SyncBN has no CPU
kernel and the CPU launcher turns it into BN), so the single-process reference runs the same per-image
forward for each half (with the rank's sampler seed) and steps on the mean of the two losses: what
the ranks must reproduce is DDP's gradient averaging and the optimizer step. SGD makes the weight
change the gradient itself, so a gradient of the wrong scale cannot pass.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fvit_test_utils import STEP_LR, build_tiny_fvit, tiny_fvit_config, tiny_train_batch
from tests.helpers import torchrun


def test_two_ranks_equal_one_process(fvit_workspace: dict, tmp_path: Path) -> None:
    root = fvit_workspace['root']
    torchrun(Path(__file__).with_name('fvit_dist_step_worker.py'), [str(root), str(tmp_path)], cwd=root)
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(2)]

    cfg = tiny_fvit_config(root)
    batch = tiny_train_batch(cfg)
    model = build_tiny_fvit(cfg)
    init = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=STEP_LR)
    losses = []
    for r in range(2):
        torch.manual_seed(1000 + r)
        data = model.data_preprocessor(dict(inputs=batch['inputs'][r:r + 1],
                                            data_samples=batch['data_samples'][r:r + 1]), True)
        loss, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
        losses.append(loss)
    (sum(losses) / 2).backward()
    opt.step()

    for r in range(2):
        assert ranks[r]['loss'] == pytest.approx(losses[r].item(), rel=1e-5)
    assert losses[0].item() != pytest.approx(losses[1].item(), rel=1e-3)  # the halves do differ
    ref = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    assert ranks[0]['state'].keys() == ref.keys()
    change = {k: (v - init[k], ranks[0]['state'][k] - init[k]) for k, v in ref.items()}
    scale = max(want.norm().item() for want, _ in change.values())
    checked, bad = 0, []
    for k, (want, got) in change.items():
        torch.testing.assert_close(ranks[1]['state'][k], ranks[0]['state'][k], atol=0, rtol=0)
        if want.norm() < 1e-6 * scale:
            # zero gradient up to rounding (conv biases in front of BatchNorm): nothing to compare
            assert got.norm() < 1e-5 * scale, k
            continue
        rel = ((got - want).norm() / want.norm()).item()
        if rel >= 1e-3:
            bad.append(f'{k}: the weight change differs by {rel:.2e} of its size')
        checked += 1
    assert not bad, '\n'.join(bad)
    assert checked >= 10
