"""The embedded default: the whole open-vocabulary pipeline on a generated benchmark.

Stages (each one an MMEngine run of a real config under ``configs/demo/``, which inherit the
same ``_base_`` files as the real-scale configs):

1. ``data``: generate the synthetic shapes benchmark (``ovdet.datasets.synthetic``);
2. ``pretrain``: contrastive pre-training of a small CLIP from scratch on its captions;
3. ``clim``: CLIM refinement of that CLIP (mosaics of the same captioned images);
4. ``region``: region recognition (boxes / masks mAcc) of the CLIP before and after CLIM;
5. ``embed``: class-name embeddings from the refined CLIP's text tower;
6. ``fvit``: F-ViT trained on base-class boxes only, on the refined, frozen CLIP;
7. ``ov_eval``: novel / base / all AP50, next to a chance baseline on the same boxes;
8. ``inference``: detections for a free-text vocabulary on a val image, drawn to a PNG.
9. ``embed_without_clim`` / ``fvit_without_clim`` / ``ov_eval_without_clim``: stages 5-7 on the
   pre-trained CLIP, i.e. the same detector without CLIM (``DemoSettings.compare_without_clim``).

Every stage is cached in ``<work_dir>/<stage>/stage.json`` under a key made of its settings, its
config text and the keys of the stages it uses: re-running reuses what is unchanged.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import os.path as osp
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIGS = REPO_ROOT / 'configs' / 'demo'


@dataclass
class DemoSettings:
    """Sizes of the embedded benchmark. ``full`` is ``make demo``; ``smoke`` is for the tests."""

    num_train: int = 6000
    num_val: int = 200
    image_size: int = 128
    # What lets a CLIP trained from scratch on 2 CPU cores learn shapes at all (each measured with the
    # demo CLIP, 600-900 steps; shape accuracy of the image embedding on one-object images, chance 10%):
    # upright shapes (rotations: 29% -> upright: 48%), bare noun-phrase captions ("a star and two
    # rings") and no colour words in them: with colours in the captions, colour alone tells the images
    # of a batch apart and shape stays at chance (8% at 300 steps with one coloured caption of up to three,
    # 29% without). Large objects (30-60% of the image), at most two per image.
    obj_size: tuple[int, int] = (38, 77)
    max_objects: int = 2
    num_captions: int = 0
    num_shape_captions: int = 2
    plain_captions: bool = True
    rotate: bool = False
    seed: int = 0
    pretrain_epochs: int = 10
    clim_epochs: int = 6
    fvit_epochs: int = 1
    fvit_images: int = 2000  # F-ViT trains on the first N base-annotated train images
    vocab: str = 'star, ring, arrow, circle, square'
    # Also train and evaluate F-ViT on the CLIP before CLIM: CLIM's effect on detection (about 70 s).
    compare_without_clim: bool = True
    demo_image_index: int = 0
    overrides: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def preset(cls, name: str) -> DemoSettings:
        if name == 'full':
            return cls()
        if name == 'smoke':
            # Real code paths at a size that runs in well under a minute (CLIM needs >= 29 images
            # per batch for one mosaic group, hence 32 train images).
            return cls(num_train=32, num_val=4, pretrain_epochs=1, clim_epochs=1, fvit_epochs=1, fvit_images=32,
                       overrides={'pretrain': {'train_dataloader.batch_size': 32},
                                  'clim': {'train_dataloader.batch_size': 32},
                                  'fvit': {'train_dataloader.batch_size': 8}})
        raise ValueError(f'unknown demo preset {name!r} (full, smoke)')


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageCache:
    """Runs a stage once per key and remembers its result (JSON) and duration."""

    def __init__(self, root: Path, log: Callable[[str], None] = print) -> None:
        self.root = root
        self.log = log
        self.records: dict[str, dict] = {}

    def run(self, name: str, key_parts: Any, fn: Callable[[Path], dict]) -> dict:
        key = _key(key_parts)
        stage_dir = self.root / name
        record_file = stage_dir / 'stage.json'
        if record_file.is_file():
            record = json.loads(record_file.read_text())
            if record.get('key') == key:
                record['reused'] = True
                self.records[name] = record
                self.log(f'[{name}] reused from {stage_dir} (finished in {record["seconds"]:.0f} s earlier)')
                return record
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.log(f'[{name}] running ...')
        start = time.perf_counter()
        result = fn(stage_dir)
        record = {'key': key, 'seconds': time.perf_counter() - start, 'result': result, 'reused': False}
        tmp = record_file.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(record, indent=2, default=str))
        os.replace(tmp, record_file)
        self.records[name] = record
        self.log(f'[{name}] done in {record["seconds"]:.0f} s')
        return record


def _config_text(path: Path) -> str:
    from mmengine.config import Config

    return Config.fromfile(str(path)).pretty_text


def _load_cfg(name: str, work_dir: Path, options: dict[str, Any]):
    """A demo config with ``options`` merged in, writing into ``work_dir``, with a progress bar."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(DEMO_CONFIGS / f'{name}.py'))
    config_epochs = cfg.train_cfg.get('max_epochs')
    cfg.merge_from_dict(options)
    _stretch_epoch_schedules(cfg, config_epochs, cfg.train_cfg.get('max_epochs'))
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    # Each in-process run gets its own visualizer instance (MMEngine keys them by name).
    cfg.visualizer.name = f'visualizer_{name}_{work_dir.name}'
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ProgressBarHook']
    cfg.custom_hooks = [*hooks, dict(type='ProgressBarHook', desc=f'{name:>8}')]
    cfg.default_hooks.logger.interval = 10 ** 6  # the progress bar replaces per-iteration console logs
    cfg.log_level = 'WARNING'  # keeps MMEngine's environment/config dump off the demo's console
    return cfg


def _stretch_epoch_schedules(cfg, old: int | None, new: int | None) -> None:
    """Epoch-based schedulers that end with the config's training end with the demo's epochs.

    The demo sets ``train_cfg.max_epochs`` from :class:`DemoSettings`; a cosine decay that still ran to
    the config's own ``max_epochs`` would stop short of zero (or sit at zero for the last epochs).
    """
    if old is None or new is None or old == new:
        return
    for sched in cfg.get('param_scheduler') or []:
        if sched.get('by_epoch', True) and sched.get('end') == old:
            sched['end'] = new
            if 'T_max' in sched:
                sched['T_max'] = new - sched.get('begin', 0)


def _runner(cfg):
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}


class EmbeddedPipeline:
    """Runs the stages listed in the module docstring in ``work_dir`` with ``settings``."""

    def __init__(self, work_dir: str | os.PathLike, settings: DemoSettings,
                 log: Callable[[str], None] = print) -> None:
        import clim  # noqa: F401  (registers modules)
        import ovdet  # noqa: F401

        self.work_dir = Path(work_dir).resolve()
        self.settings = settings
        self.log = log
        self.cache = StageCache(self.work_dir, log)

    # -- stages ------------------------------------------------------------------------------
    def _overrides(self, stage: str) -> dict[str, Any]:
        return dict(self.settings.overrides.get(stage, {}))

    def data(self) -> dict:
        s = self.settings
        params = dict(num_train=s.num_train, num_val=s.num_val, image_size=s.image_size, seed=s.seed,
                      obj_size=tuple(s.obj_size), max_objects=s.max_objects, num_captions=s.num_captions,
                      num_shape_captions=s.num_shape_captions, plain_captions=s.plain_captions,
                      rotate=s.rotate)

        def build(stage_dir: Path) -> dict:
            from ovdet.datasets.synthetic import generate_shapes_dataset

            paths = generate_shapes_dataset(stage_dir / 'shapes', **params)
            return {'root': str(paths['root']), 'counts': _dataset_counts(Path(paths['root']))}

        return self.cache.run('data', params, build)

    def train_clip_stage(self, stage: str, config: str, upstream: list[dict], options: dict[str, Any]) -> dict:
        """A training stage whose product is an exported CLIP checkpoint (``clip_latest.pt``)."""
        key = [config, _config_text(DEMO_CONFIGS / f'{config}.py'), options, [u['key'] for u in upstream]]

        def train(stage_dir: Path) -> dict:
            cfg = _load_cfg(config, stage_dir, options)
            cfg.train_cfg.val_interval = 10 ** 6  # the region stage evaluates every CLIP the same way
            runner = _runner(cfg)
            runner.train()
            ckpt = stage_dir / 'clip_latest.pt'
            if not ckpt.is_file():
                raise RuntimeError(f'stage {stage}: training finished but {ckpt} was not exported')
            return {'clip_checkpoint': str(ckpt)}

        return self.cache.run(stage, key, train)

    def pretrain(self, data: dict) -> dict:
        root = data['result']['root']
        options = {**_dataset_paths(root), 'train_cfg.max_epochs': self.settings.pretrain_epochs,
                   **self._overrides('pretrain')}
        return self.train_clip_stage('pretrain', 'clip_pretrain', [data], options)

    def clim(self, data: dict, pretrain: dict) -> dict:
        root = data['result']['root']
        options = {**_dataset_paths(root), 'train_cfg.max_epochs': self.settings.clim_epochs,
                   'model.clip.pretrained': pretrain['result']['clip_checkpoint'], **self._overrides('clim')}
        return self.train_clip_stage('clim', 'clim', [data, pretrain], options)

    def region(self, data: dict, checkpoints: dict[str, dict]) -> dict:
        """Region recognition (val set) of each CLIP checkpoint, with the same config."""
        root = data['result']['root']
        key = ['region', _config_text(DEMO_CONFIGS / 'clim.py'), data['key'],
               {k: v['key'] for k, v in checkpoints.items()}]

        def evaluate(stage_dir: Path) -> dict:
            out = {}
            for name, stage in checkpoints.items():
                options = {**_dataset_paths(root), 'model.clip.pretrained': stage['result']['clip_checkpoint']}
                cfg = _load_cfg('clim', stage_dir / name, options)
                out[name] = _scalar_metrics(_runner(cfg).test())
            return out

        return self.cache.run('region', key, evaluate)

    def embed(self, data: dict, clip_stage: dict, name: str = 'embed') -> dict:
        root = data['result']['root']
        key = ['embed', data['key'], clip_stage['key'], _demo_templates()]

        def run(stage_dir: Path) -> dict:
            import numpy as np

            from clim.models import CLIPModel

            names = _class_names(root)
            clip = CLIPModel(pretrained=clip_stage['result']['clip_checkpoint']).eval()
            emb = clip.encode_class_names(list(names), templates=_demo_templates())
            emb = emb.detach().cpu().numpy().astype(np.float32)
            path = stage_dir / 'class_embeddings.npy'
            np.save(path, emb)
            return {'class_embeddings': str(path), 'classes': list(names)}

        return self.cache.run(name, key, run)

    def fvit(self, data: dict, clip_stage: dict, embed: dict, name: str = 'fvit') -> dict:
        root = data['result']['root']
        options = {**_detection_paths(root), 'train_cfg.max_epochs': self.settings.fvit_epochs,
                   'train_dataloader.dataset.indices': self.settings.fvit_images,
                   'model.backbone.clip_cfg.pretrained': clip_stage['result']['clip_checkpoint'],
                   'model.roi_head.bbox_head.class_embeddings': embed['result']['class_embeddings'],
                   **self._overrides('fvit')}
        key = ['fvit', _config_text(DEMO_CONFIGS / 'fvit.py'), options, data['key'], clip_stage['key'],
               embed['key']]

        def train(stage_dir: Path) -> dict:
            cfg = _load_cfg('fvit', stage_dir, options)
            cfg.train_cfg.val_interval = 10 ** 6  # evaluated by the ov_eval stage
            _runner(cfg).train()
            ckpt = stage_dir / f'epoch_{self.settings.fvit_epochs}.pth'
            return {'checkpoint': str(ckpt), 'options': options}

        return self.cache.run(name, key, train)

    def ov_eval(self, data: dict, fvit: dict, name: str = 'ov_eval') -> dict:
        root = data['result']['root']
        key = ['ov_eval', fvit['key']]

        def evaluate(stage_dir: Path) -> dict:
            options = dict(fvit['result']['options'])
            cfg = _load_cfg('fvit', stage_dir, options)
            ann = osp.join(root, 'annotations', 'instances_val.json')
            cfg.test_evaluator = [dict(type='OVCocoMetric', ann_file=ann),
                                  dict(type='OVCocoChanceMetric', ann_file=ann, seed=self.settings.seed)]
            cfg.load_from = fvit['result']['checkpoint']
            return _scalar_metrics(_runner(cfg).test())

        return self.cache.run(name, key, evaluate)

    def inference(self, data: dict, fvit: dict) -> dict:
        root = data['result']['root']
        key = ['inference', fvit['key'], self.settings.vocab, self.settings.demo_image_index, _demo_templates()]

        def run(stage_dir: Path) -> dict:
            from ovdet.apis import detect, load_detector

            cfg = _load_cfg('fvit', stage_dir, dict(fvit['result']['options']))
            model = load_detector(cfg, fvit['result']['checkpoint'], device='cpu')
            images = sorted((Path(root) / 'images' / 'val').iterdir())
            image = images[self.settings.demo_image_index % len(images)]
            out = stage_dir / 'detections.png'
            vocab = [v.strip() for v in self.settings.vocab.split(',') if v.strip()]
            result = detect(str(image), vocab, model=model, out_file=str(out), templates=_demo_templates())
            found = _describe_detections(result, vocab)
            return {'image': str(image), 'png': str(out), 'vocabulary': vocab, 'detections': found}

        return self.cache.run('inference', key, run)

    # -- all ---------------------------------------------------------------------------------
    def run(self) -> dict:
        data = self.data()
        pretrain = self.pretrain(data)
        clim = self.clim(data, pretrain)
        region = self.region(data, {'before_clim': pretrain, 'after_clim': clim})
        embed = self.embed(data, clim)
        fvit = self.fvit(data, clim, embed)
        ov = self.ov_eval(data, fvit)
        inference = self.inference(data, fvit)
        ov_without_clim = None
        if self.settings.compare_without_clim:
            # The same detector recipe on the pre-trained CLIP: CLIM's effect on open-vocabulary detection.
            embed0 = self.embed(data, pretrain, name='embed_without_clim')
            fvit0 = self.fvit(data, pretrain, embed0, name='fvit_without_clim')
            ov_without_clim = self.ov_eval(data, fvit0, name='ov_eval_without_clim')['result']
        summary = {'settings': asdict(self.settings), 'region': region['result'], 'ov': ov['result'],
                   'ov_without_clim': ov_without_clim, 'inference': inference['result'],
                   'seconds': {k: v['seconds'] for k, v in self.cache.records.items()},
                   'reused': {k: v['reused'] for k, v in self.cache.records.items()}}
        (self.work_dir / 'summary.json').write_text(json.dumps(summary, indent=2, default=str))
        return summary


# -- helpers -----------------------------------------------------------------------------------
def _dataset_paths(root: str) -> dict[str, Any]:
    root = root.rstrip('/') + '/'
    return {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root}


def _detection_paths(root: str) -> dict[str, Any]:
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val.json'
    return {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root, 'val_evaluator.ann_file': ann,
            'test_evaluator.ann_file': ann}


@functools.lru_cache(maxsize=1)
def _demo_templates_cached() -> tuple[str, ...]:
    from mmengine.config import Config

    return tuple(Config.fromfile(str(DEMO_CONFIGS / 'clim.py')).model.region_eval.templates)


def _demo_templates() -> list[str]:
    """The prompt templates of the demo CLIP (``demo_templates`` of its base config), parsed once."""
    return list(_demo_templates_cached())


def _class_names(root: str) -> list[str]:
    return [n.strip() for n in (Path(root) / 'class_names' / 'all.txt').read_text().splitlines() if n.strip()]


def _dataset_counts(root: Path) -> dict[str, int]:
    counts = {}
    for split in ('train', 'val'):
        gt = json.loads((root / 'annotations' / f'instances_{split}.json').read_text())
        counts[f'{split}_images'] = len(gt['images'])
        counts[f'{split}_boxes'] = len(gt['annotations'])
    return counts


def _describe_detections(result: Any, vocab: list[str], top: int = 10) -> list[dict]:
    inst = result.pred_instances if hasattr(result, 'pred_instances') else result
    order = inst.scores.argsort(descending=True)[:top]
    return [{'label': vocab[int(inst.labels[i])], 'score': round(float(inst.scores[i]), 3),
             'box': [round(float(v), 1) for v in inst.bboxes[i]]} for i in order]


def format_summary(summary: dict) -> str:
    """The one table ``make demo`` ends with."""
    rows: list[tuple[str, str]] = []
    region = summary['region']
    for key in ('box_top1_all', 'mask_top1_all', 'crop_top1_all'):
        before = _find(region.get('before_clim', {}), key)
        after = _find(region.get('after_clim', {}), key)
        if before is not None and after is not None:
            rows.append((f'region mAcc {key.replace("_all", "")} (before -> after CLIM)',
                         f'{before:6.2f} -> {after:6.2f}'))
    ov = summary['ov']
    for split in ('novel', 'base', 'all'):
        det = _find(ov, f'ov_coco/{split}_ap50')
        chance = _find(ov, f'chance/{split}_ap50')
        if det is not None:
            rows.append((f'{split} AP50 (F-ViT | chance baseline)', f'{100 * det:6.2f} | {100 * (chance or 0):6.2f}'))
    for split in ('novel', 'base', 'all'):
        det = _find(summary.get('ov_without_clim') or {}, f'ov_coco/{split}_ap50')
        if det is not None:
            rows.append((f'{split} AP50 without CLIM (F-ViT on the pre-trained CLIP)', f'{100 * det:6.2f}'))
    for stage, secs in summary['seconds'].items():
        note = ' (reused)' if summary['reused'].get(stage) else ''
        rows.append((f'time: {stage}', f'{secs:6.1f} s{note}'))
    total = sum(summary['seconds'].values())
    rows.append(('time: total', f'{total:6.1f} s'))
    inference = summary['inference']
    rows.append(('detections drawn to', inference['png']))
    width = max(len(r[0]) for r in rows)
    lines = ['=' * (width + 24), 'clim-ovd embedded benchmark: summary', '-' * (width + 24)]
    lines += [f'{name:<{width}}  {value}' for name, value in rows]
    lines.append('=' * (width + 24))
    found = ', '.join(f"{d['label']} {d['score']:.2f}" for d in inference['detections'][:6])
    lines.append(f'vocabulary "{", ".join(inference["vocabulary"])}" on {Path(inference["image"]).name}: {found}')
    return '\n'.join(lines)


def _find(metrics: dict, suffix: str) -> float | None:
    for key, value in metrics.items():
        if key == suffix or key.endswith('/' + suffix) or key.endswith(suffix):
            return float(value)
    return None


__all__ = ['DemoSettings', 'EmbeddedPipeline', 'StageCache', 'format_summary']
