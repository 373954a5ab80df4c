"""--resume on the tiny BARON-KD across the point where the boxes cache is read: the checkpoint carries
the cache (and its call count), so a resumed run ends with the weights, queues and cache of the
uninterrupted run. In-process MMEngine runs (what tools/train.py builds), to keep it short."""
from __future__ import annotations

from pathlib import Path

import torch

from baron_test_utils import TINY_CONFIG
from clim.engine import safe_torch_load


def _train(ws: dict, work: Path, iters: int, resume: Path | None = None) -> Path:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.teacher.pretrained = str(ws['clip_ckpt'])
    cfg.model.roi_head.bbox_head.class_embeddings = str(ws['attn12'])
    # The cache starts at the 3rd KD image (iteration 2, 2 KD images each); iteration 3 reads it. Low score
    # thresholds let RPN proposals (not only the GT boxes) into the selection and the cache, so cached boxes
    # change the bags of a later visit.
    cfg.merge_from_dict({'model.boxes_cache.start_calls': 3, 'model.boxes_cache.score_thr': 0.3,
                         'model.kd_proposal_cfg.score_thr': 0.3, 'train_cfg.max_iters': iters,
                         'train_cfg.val_interval': 100, 'default_hooks.checkpoint.interval': 2,
                         'randomness': dict(seed=0)})
    cfg.work_dir = str(work)
    cfg.experiment_name = work.name
    if resume is not None:
        cfg.resume, cfg.load_from = True, str(resume)
    Runner.from_cfg(cfg).train()
    return work


def test_resume_across_the_boxes_cache_matches_uninterrupted_run(baron_workspace: dict, tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.chdir(baron_workspace['root'])
    full = _train(baron_workspace, tmp_path / 'cache_full', 3)
    part = _train(baron_workspace, tmp_path / 'cache_part', 2)
    resumed = _train(baron_workspace, tmp_path / 'cache_resumed', 3, resume=part / 'iter_2.pth')

    saved = safe_torch_load(part / 'iter_2.pth', map_location='cpu')['state_dict']['boxes_cache._extra_state']
    assert int(saved[0, 0]) == 4 and int(saved[0, 1]) > 0  # 4 KD images seen, boxes cached at iteration 2
    expected = safe_torch_load(full / 'iter_3.pth', map_location='cpu')['state_dict']
    got = safe_torch_load(resumed / 'iter_3.pth', map_location='cpu')['state_dict']
    assert set(got) == set(expected)
    differ = [k for k, v in expected.items() if not torch.equal(v, got[k])]
    assert not differ, f'{len(differ)} tensors differ after resume, e.g. {differ[:5]}'
    assert int(expected['boxes_cache._extra_state'][0, 0]) == 6
