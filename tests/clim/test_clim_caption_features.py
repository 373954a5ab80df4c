"""Precomputed caption features: the same loss as the in-step text forward, and never a stale feature."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.structures import BaseDataElement

from clim.datasets import AddCaptionFeatures, CaptionFeatureStore, save_caption_features
from clim.method import CLIPContrastive
from clim_test_utils import REPO_ROOT, build_tiny_clim, step_optimizer

WORDS = 'a red dog cat bus sitting on the table next to two large white plates near window'.split()


def varied_batch(n: int = 32, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """uint8 images and n distinct captions of 2-12 words (so the trimmed forward has work to cut)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    lengths = torch.randint(2, 13, (n,), generator=g).tolist()
    caps = [' '.join(WORDS[(i + k) % len(WORDS)] for k in range(m)) + f' {i}' for i, m in enumerate(lengths)]
    return images, caps


def token_samples(model, captions: list[str]) -> list[BaseDataElement]:
    out = []
    for cap, tok in zip(captions, model.clip.tokenize(captions)):
        s = BaseDataElement(metainfo=dict(caption=cap))
        s.text = tok
        out.append(s)
    return out


def feature_samples(path: Path, captions: list[str]) -> list[BaseDataElement]:
    """Samples as the pipeline packs them, then through AddCaptionFeatures."""
    add = AddCaptionFeatures(str(path))
    return [add(dict(inputs=None, data_samples=BaseDataElement(metainfo=dict(caption=c))))['data_samples']
            for c in captions]


def load_tool():
    spec = importlib.util.spec_from_file_location('precompute_tool', REPO_ROOT / 'tools' /
                                                  'precompute_caption_features.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.fixture
def batch(tiny_clip_cfg: dict) -> dict:
    model = build_tiny_clim(tiny_clip_cfg)
    images, caps = varied_batch()
    inputs = model.data_preprocessor(dict(inputs=list(images), data_samples=None), True)['inputs']
    return dict(inputs=inputs, captions=caps)


def test_precomputed_features_train_bit_identically_to_the_in_step_forward(tiny_clip_cfg: dict, batch: dict,
                                                                            tmp_path: Path) -> None:
    in_step = build_tiny_clim(tiny_clip_cfg)
    served = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    with torch.no_grad():  # the features exactly as the step computes them (same batch, same forward)
        feats = in_step.caption_features(token_samples(in_step, caps))
    path = tmp_path / 'feats.pt'
    save_caption_features(path, caps, feats, in_step.text_feature_key())
    opt_a, opt_b = step_optimizer(in_step), step_optimizer(served)
    seen = []
    served.clip.clip.transformer.register_forward_pre_hook(lambda m, a: seen.append(1))
    for _ in range(3):  # three AdamW steps: losses and weights stay bit-identical
        la = in_step.loss(batch['inputs'], token_samples(in_step, caps))['loss_contrast']
        lb = served.loss(batch['inputs'], feature_samples(path, caps))['loss_contrast']
        assert torch.equal(la, lb), (la.item(), lb.item())
        for opt, loss in ((opt_a, la), (opt_b, lb)):
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not seen  # no text forward ran in the served model's steps
    for (name, pa), pb in zip(in_step.named_parameters(), served.parameters()):
        assert torch.equal(pa, pb), name


def test_tool_features_match_the_step_for_any_batch_composition(tiny_clip_cfg: dict, batch: dict,
                                                                tmp_path: Path) -> None:
    model = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    tool = load_tool()
    with torch.no_grad():
        # The tool batches captions by length, 5 at a time: other compositions than the step's.
        feats = tool.encode_captions(model, caps, batch_size=5)
        step_feats = model.caption_features(token_samples(model, caps))
        torch.testing.assert_close(feats, step_feats, atol=2e-6, rtol=0)
        path = tmp_path / 'feats.pt'
        save_caption_features(path, caps, feats, model.text_feature_key())
        served = model.loss(batch['inputs'], feature_samples(path, caps))['loss_contrast']
        in_step = model.loss(batch['inputs'], token_samples(model, caps))['loss_contrast']
    torch.testing.assert_close(served, in_step, atol=0, rtol=1e-5)


def test_fp16_features_are_an_explicit_approximation(tiny_clip_cfg: dict, batch: dict, tmp_path: Path) -> None:
    model = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    with torch.no_grad():
        feats = model.caption_features(token_samples(model, caps))
        save_caption_features(tmp_path / 'f16.pt', caps, feats.half(), model.text_feature_key())
        assert CaptionFeatureStore(tmp_path / 'f16.pt').dtype == torch.float16
        exact = model.loss(batch['inputs'], token_samples(model, caps))['loss_contrast']
        rounded = model.loss(batch['inputs'], feature_samples(tmp_path / 'f16.pt', caps))['loss_contrast']
    assert not torch.equal(exact, rounded)  # why float32 is the default
    torch.testing.assert_close(rounded, exact, atol=0, rtol=1e-2)


def test_stale_features_are_refused(tiny_clip_cfg: dict, batch: dict, tmp_path: Path) -> None:
    model = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    path = tmp_path / 'feats.pt'
    with torch.no_grad():
        save_caption_features(path, caps, model.caption_features(token_samples(model, caps)),
                              model.text_feature_key())
    # A caption the file does not hold (the captions changed since it was written).
    with pytest.raises(KeyError, match='rerun tools/precompute_caption_features.py'):
        feature_samples(path, ['a caption that was never encoded'])
    samples = feature_samples(path, caps)
    # The other text forward is another function: its features are not these.
    model.text_forward = 'full'
    with pytest.raises(ValueError, match='text_forward'):
        model.caption_features(samples)
    model.text_forward = 'trimmed'
    model.caption_features(samples)
    # A text weight changed in place after the key was computed (e.g. a checkpoint loaded into the model).
    with torch.no_grad():
        model.clip.clip.ln_final.weight.add_(1e-3)
    with pytest.raises(ValueError, match='computed with text tower'):
        model.caption_features(samples)
    # Other weights entirely (another seed).
    other = build_tiny_clim(tiny_clip_cfg, seed=1)
    with pytest.raises(ValueError, match='computed with text tower'):
        other.caption_features(samples)
    # Half a batch with features, half without.
    with pytest.raises(ValueError, match='every sample of a batch'):
        other.caption_features(samples[:2] + token_samples(other, caps[2:4]))


def test_training_the_image_tower_keeps_the_key(tiny_clip_cfg: dict, batch: dict, tmp_path: Path) -> None:
    # CLIM trains image blocks and logit_scale every step: the text key (and the file) must stay valid.
    model = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    key = model.text_feature_key()
    with torch.no_grad():
        save_caption_features(tmp_path / 'f.pt', caps, model.caption_features(token_samples(model, caps)), key)
    opt = step_optimizer(model)
    for _ in range(2):
        loss = model.loss(batch['inputs'], feature_samples(tmp_path / 'f.pt', caps))['loss_contrast']
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.text_feature_key() == key


def test_a_training_text_tower_refuses_precomputed_features(tiny_clip_cfg: dict, batch: dict,
                                                            tmp_path: Path) -> None:
    clim_model = build_tiny_clim(tiny_clip_cfg)
    caps = batch['captions']
    clip = CLIPContrastive(clip=dict(type='CLIPModel', model_cfg=copy.deepcopy(tiny_clip_cfg)))
    with torch.no_grad():
        save_caption_features(tmp_path / 'f.pt', caps, clim_model.caption_features(token_samples(clim_model, caps)),
                              clip.text_feature_key())
    with pytest.raises(ValueError, match='the text tower trains'):
        clip.loss(batch['inputs'], feature_samples(tmp_path / 'f.pt', caps))
    # and without features nothing changed: the ordinary per-step text forward, with gradients
    loss = clip.loss(batch['inputs'], token_samples(clip, caps))['loss_contrast']
    loss.backward()
    assert clip.clip.clip.ln_final.weight.grad is not None


def test_tool_encodes_every_caption_of_a_config(clim_shapes: dict, tmp_path: Path, tiny_clip_cfg: dict) -> None:
    import json

    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from clim.datasets import CaptionDataset  # noqa: F401  (registered)
    from mmdet.registry import DATASETS, MODELS

    root = clim_shapes['root'] + '/'
    out = tmp_path / 'caption_features.pt'
    tool = load_tool()
    assert tool.main(['configs/tiny/clim_tiny_shapes.py', '--out', str(out), '--batch-size', '16', '--device', 'cpu',
                      '--cfg-options', f'train_dataloader.dataset.data_root={root}']) == 0
    store = CaptionFeatureStore(out)
    ann = json.loads(Path(root, 'annotations', 'captions_train.json').read_text())
    captions = {c.strip() for im in ann['images'] for c in im['captions'] if c.strip()}
    assert len(store) == len(captions) and all(c in store for c in captions)
    assert store.dtype == torch.float32

    # The config with the features in its pipeline gives the loss of the in-step config on the same samples.
    losses = {}
    for name in ('clim_tiny_shapes', 'clim_tiny_shapes_text_features'):
        cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'tiny' / f'{name}.py'))
        ds_cfg = cfg.train_dataloader.dataset
        ds_cfg.data_root = root
        for t in ds_cfg.pipeline:
            if t['type'] == 'AddCaptionFeatures':
                t['path'] = str(out)
        ds = DATASETS.build(ds_cfg)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        data = model.data_preprocessor(pseudo_collate([ds[(0, i)] for i in range(32)]), True)
        with torch.no_grad():
            losses[name] = model.loss(data['inputs'], data['data_samples'])['loss_contrast']
        assert all(hasattr(s, 'text_features') for s in data['data_samples']) == (name != 'clim_tiny_shapes')
    torch.testing.assert_close(losses['clim_tiny_shapes_text_features'], losses['clim_tiny_shapes'], atol=0, rtol=1e-5)


def test_tool_reads_webdataset_shards_and_wrapped_datasets(tmp_path: Path) -> None:
    import json

    from clim_test_utils import write_shard

    write_shard(tmp_path / 'shard-0.tar', [
        ('s0.png', b'x'), ('s0.json', json.dumps({'captions': ['a red star ', 'two rings']}).encode()),
        ('s1.png', b'x'), ('s1.txt', b'a blue ring'),
        ('s2.png', b'x'), ('s2.json', json.dumps({'caption': '  '}).encode()),
    ])
    write_shard(tmp_path / 'shard-1.tar', [('t0.png', b'x'), ('t0.txt', b'a red star')])
    web = dict(type='WebCaptionDataset', shards='shard-{0..1}.tar', data_root=str(tmp_path), num_samples=4)
    tool = load_tool()
    # stripped as the dataset strips them, blanks dropped, file order, repeats kept (main() dedups)
    assert list(tool.dataset_captions(web)) == ['a red star', 'two rings', 'a blue ring', 'a red star']
    wrapped = dict(type='ConcatDataset', datasets=[dict(type='RepeatDataset', times=2, dataset=web)])
    assert list(tool.dataset_captions(wrapped)) == list(tool.dataset_captions(web))
    with pytest.raises(SystemExit, match='not a caption dataset'):
        list(tool.dataset_captions(dict(type='CocoDataset')))
