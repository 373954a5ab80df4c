"""clim/engine/mmcv_cuda_fallback.py: torchvision's kernels standing in for mmcv's missing CUDA ops.

The stand-in dispatches on a predicate (default: the tensor is on CUDA). Here it is widened to every
tensor, so torchvision's kernels run on CPU tensors through mmcv's own Python wrappers -- the exact
arithmetic and wiring a GPU machine without mmcv CUDA ops gets -- and are compared with mmcv's CPU
kernels: RoIAlign forward and backward, nms / batched_nms / mmdet's multiclass_nms, and whole tiny
F-ViT / BARON train + test runs, which also show that these are the only compiled mmcv ops our
detectors reach.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO_ROOT, make_tiny_detector_workspace

COVERED = {'nms', 'roi_align_forward', 'roi_align_backward'}


@pytest.fixture
def torchvision_everywhere() -> Iterator[None]:
    """mmcv.ops.nms / mmcv.ops.roi_align run torchvision's kernels on every device, for one test."""
    from clim.engine.mmcv_cuda_fallback import install_torchvision_kernels, uninstall_torchvision_kernels

    install_torchvision_kernels(use_torchvision=lambda t: True)
    try:
        yield
    finally:
        uninstall_torchvision_kernels()


def _both(fn):
    """``fn()`` with mmcv's kernels, then with torchvision's (on the same CPU tensors)."""
    from clim.engine.mmcv_cuda_fallback import install_torchvision_kernels, uninstall_torchvision_kernels

    reference = fn()
    install_torchvision_kernels(use_torchvision=lambda t: True)
    try:
        return reference, fn()
    finally:
        uninstall_torchvision_kernels()


def _rois(n: int, g: torch.Generator) -> torch.Tensor:
    """(n, 5) rois over a 2-image batch of 96 x 128 px, some crossing the border, some sub-pixel."""
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([140.0, 110.0]) - 10
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 60
    wh[: n // 8] *= 0.01
    idx = torch.randint(0, 2, (n, 1), generator=g).double()
    return torch.cat([idx, xy, xy + wh], 1)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('output_size', [7, 1])
def test_roi_align_forward_and_backward_match_mmcv(aligned: bool, sampling_ratio: int, output_size: int) -> None:
    from mmcv.ops import RoIAlign  # what mmdet's SingleRoIExtractor builds from roi_layer=dict(type='RoIAlign')

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 24, 32, generator=g, dtype=torch.float64)
    rois = _rois(64, g)
    grad_out = torch.randn(64, 5, output_size, output_size, generator=g, dtype=torch.float64)
    layer = RoIAlign(output_size, spatial_scale=0.25, sampling_ratio=sampling_ratio, aligned=aligned)

    def run():
        x = feat.clone().requires_grad_(True)
        out = layer(x, rois)
        out.backward(grad_out)
        return out.detach(), x.grad

    (out_ref, grad_ref), (out_tv, grad_tv) = _both(run)
    assert out_ref.abs().sum() > 0 and grad_ref.abs().sum() > 0
    torch.testing.assert_close(out_tv, out_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad_tv, grad_ref, atol=1e-12, rtol=1e-12)


def test_roi_align_float32_matches_mmcv() -> None:
    from mmcv.ops import RoIAlign

    g = torch.Generator().manual_seed(1)
    feat = torch.randn(2, 8, 24, 32, generator=g)
    rois = _rois(40, g).float()
    layer = RoIAlign(7, spatial_scale=0.25, sampling_ratio=0, aligned=True)
    ref, tv = _both(lambda: layer(feat, rois))
    torch.testing.assert_close(tv, ref, atol=1e-5, rtol=1e-5)


def test_nms_batched_nms_and_multiclass_nms_match_mmcv() -> None:
    from mmcv.ops import batched_nms, nms
    from mmdet.models.layers import multiclass_nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(800, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + torch.rand(800, 2, generator=g) * 60 + 1], 1)
    # tied scores (an untrained RPN has many): the kept boxes must also come in mmcv's order
    scores = torch.randint(0, 40, (800,), generator=g) / 40
    labels = torch.randint(0, 6, (800,), generator=g)
    cls_scores = torch.randint(0, 20, (300, 5), generator=g) / 20  # mmdet layout: 4 classes + background

    def run():
        single = nms(boxes, scores, 0.5)
        thresholded = nms(boxes, scores, 0.3, score_threshold=0.4, max_num=50)
        batched = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.6))
        split = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.6, split_thr=100))
        multi = multiclass_nms(boxes[:300], cls_scores, 0.05, dict(type='nms', iou_threshold=0.5), 100)
        return single, thresholded, batched, split, multi

    ref, tv = _both(run)
    for (dets_ref, keep_ref), (dets_tv, keep_tv) in zip(ref, tv):
        assert len(keep_ref) > 0
        assert torch.equal(keep_tv, keep_ref)
        torch.testing.assert_close(dets_tv, dets_ref)
    assert 0 < len(ref[0][1]) < len(boxes)  # something was suppressed


def test_what_torchvision_cannot_do_is_refused_by_name(torchvision_everywhere: None) -> None:
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
    with pytest.raises(NotImplementedError, match='offset=1'):
        nms(boxes, torch.tensor([0.9, 0.8]), 0.5, offset=1)
    with pytest.raises(NotImplementedError, match="pool_mode='max'"):
        RoIAlign(2, pool_mode='max')(torch.randn(1, 1, 8, 8), torch.tensor([[0.0, 0, 0, 4, 4]]))


def test_nothing_changes_without_cuda_or_with_mmcv_cuda_ops() -> None:
    import importlib

    import mmcv

    import clim  # noqa: F401  (installs the fallback where it applies)
    from clim.engine.mmcv_cuda_fallback import install_mmcv_cuda_fallback, mmcv_has_cuda_ops

    needed = torch.cuda.is_available() and not mmcv_has_cuda_ops()
    assert install_mmcv_cuda_fallback() is needed
    modules = [importlib.import_module(f'mmcv.ops.{name}') for name in ('nms', 'roi_align')]
    wrapped = [m.ext_module is not mmcv._ext for m in modules]
    assert wrapped == [needed, needed]


class _Recorder:
    """mmcv's compiled module, noting the name of every function called through it."""

    def __init__(self, ext, calls: set[str]) -> None:
        self._ext, self._calls = ext, calls

    def __getattr__(self, name: str):
        fn = getattr(self._ext, name)

        def call(*args, **kwargs):
            self._calls.add(name)
            return fn(*args, **kwargs)

        return call


def _train_and_test(config: str, work_dir: Path) -> dict[str, torch.Tensor]:
    """The tiny config's few training iterations and its validation, in this process; the weights after."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / config))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


@pytest.fixture(scope='module')
def detector_workspace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny detector workspace (with the "attn12" class embeddings configs/tiny/baron_kd_tiny_shapes.py reads)."""
    return make_tiny_detector_workspace(tmp_path_factory.mktemp('fallback_ws'))


# BARON adds batched_nms in its region sampling; one run of it (the comparison is F-ViT's) keeps it short.
@pytest.mark.parametrize('config,compare', [('fvit_tiny_shapes.py', True), ('baron_kd_tiny_shapes.py', False)])
def test_detectors_reach_only_the_stand_in_ops_and_train_the_same(config: str, compare: bool,
                                                                 detector_workspace: dict,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    import clim  # noqa: F401
    import ovdet  # noqa: F401

    monkeypatch.chdir(detector_workspace['root'])
    calls: set[str] = set()
    for name, module in list(sys.modules.items()):
        if name.startswith('mmcv.ops.') and hasattr(module, 'ext_module'):
            monkeypatch.setattr(module, 'ext_module', _Recorder(module.ext_module, calls))
    reference = _train_and_test(config, tmp_path / 'mmcv')
    assert calls == COVERED  # train (RoIAlign forward + backward, RPN nms) and test (multiclass_nms)
    if not compare:
        return

    from clim.engine.mmcv_cuda_fallback import install_torchvision_kernels

    install_torchvision_kernels(use_torchvision=lambda t: True)  # undone by monkeypatch with the recorder
    calls.clear()
    fallback = _train_and_test(config, tmp_path / 'torchvision')
    assert not calls & COVERED, calls  # every such call went to torchvision
    assert reference.keys() == fallback.keys()
    for key, value in reference.items():
        torch.testing.assert_close(fallback[key], value, atol=1e-5, rtol=1e-4, msg=key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_roi_align_and_nms_on_cuda_match_cpu() -> None:
    """On a GPU machine: mmcv's own CUDA ops, or torchvision's where mmcv has none, agree with mmcv on CPU."""
    from mmcv.ops import RoIAlign, batched_nms

    import clim  # noqa: F401

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 8, 24, 32, generator=g)
    rois = _rois(64, g).float()
    layer = RoIAlign(7, spatial_scale=0.25, sampling_ratio=0, aligned=True)
    results = []
    for device in ('cpu', 'cuda'):
        x = feat.to(device).requires_grad_(True)
        out = layer(x, rois.to(device))
        out.sum().backward()
        results.append((out.detach().cpu(), x.grad.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-4, rtol=1e-4)
    boxes = rois[:, 1:]
    scores = torch.rand(64, generator=g)
    labels = torch.randint(0, 3, (64,), generator=g)
    keep = [batched_nms(boxes.to(d), scores.to(d), labels.to(d), dict(type='nms', iou_threshold=0.5))[1].cpu()
            for d in ('cpu', 'cuda')]
    assert torch.equal(keep[0], keep[1])
