"""The demo's stages, each an MMEngine run of a real config under ``configs/demo/`` (which inherit the
same ``_base_`` files as the real-scale configs), cached by :class:`~ovd_demo.cache.StageCache`:

1. ``data``: generate the shapes benchmark (:mod:`ovd_demo.shapes`);
2. ``pretrain``: contrastive pre-training of a small CLIP from scratch on its captions;
3. ``clim``: CLIM refinement of that CLIP (mosaics of the same captioned images);
4. ``region``: region recognition (boxes / masks / crops mAcc) of the CLIP before and after CLIM, on
   the ``v2`` dense map; ``region_v1`` / ``region_plain``: the same boxes and masks with the other
   dense modes; each also reports how many regions get the one most predicted class;
5. ``embed``: class-name embeddings from the refined CLIP's text tower;
6. ``fvit``: F-ViT trained on base-class boxes only, on the refined, frozen CLIP;
7. ``ov_eval``: novel / base / all AP50, next to a chance baseline on the same boxes;
8. ``inference``: detections for a free-text vocabulary on a val image, drawn to a PNG;
   ``picture``: a grid of val images with ground truth and detections (:mod:`ovd_demo.picture`);
9. ``embed_without_clim`` / ``fvit_without_clim`` / ``ov_eval_without_clim``: stages 5-7 on the
   pre-trained CLIP, i.e. the same detector without CLIM (``DemoSettings.compare_without_clim``).

A stage's key is made of its settings, its config text and the keys of the stages it uses.
"""
from __future__ import annotations

import json
import os.path as osp
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache import StageCache
from .configs import (CLIM_CONFIG, FVIT_CONFIG, PRETRAIN_CONFIG, config_text, dataset_paths, demo_templates,
                      detection_paths, load_demo_config)
from .settings import DemoSettings

# Dense extraction modes of region recognition: v2 (CLIM's, the default) and the two it is compared with.
REGION_MODES = ('v2', 'v1', 'plain')


def _runner(cfg):
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}


class DemoStages:
    """The stages listed in the module docstring, in ``work_dir`` with ``settings``.

    Every method takes the records (``{'key', 'result', ...}``, see :class:`~ovd_demo.cache.StageCache`)
    of the stages it uses and returns its own.
    """

    def __init__(self, work_dir: Path, settings: DemoSettings, log: Callable[[str], None] = print) -> None:
        import clim  # noqa: F401  (registers modules)
        import ovdet  # noqa: F401

        from . import prediction_share  # noqa: F401  (registers PredictedClassShareMetric)

        self.work_dir = work_dir
        self.settings = settings
        self.cache = StageCache(work_dir, log)

    def _overrides(self, stage: str) -> dict[str, Any]:
        return dict(self.settings.overrides.get(stage, {}))

    def data(self) -> dict:
        s = self.settings
        params = dict(num_train=s.num_train, num_val=s.num_val, image_size=s.image_size, seed=s.seed,
                      obj_size=tuple(s.obj_size), max_objects=s.max_objects, num_captions=s.num_captions,
                      num_shape_captions=s.num_shape_captions, plain_captions=s.plain_captions,
                      rotate=s.rotate)

        def build(stage_dir: Path) -> dict:
            from .shapes import generate_shapes_dataset

            paths = generate_shapes_dataset(stage_dir / 'shapes', **params)
            return {'root': str(paths['root']), 'counts': _dataset_counts(Path(paths['root']))}

        return self.cache.run('data', params, build)

    def train_clip_stage(self, stage: str, config: str, upstream: list[dict], options: dict[str, Any]) -> dict:
        """A training stage whose product is an exported CLIP checkpoint (``clip_latest.pt``)."""
        key = [config, config_text(config), options, [u['key'] for u in upstream]]

        def train(stage_dir: Path) -> dict:
            cfg = load_demo_config(config, stage_dir, options)
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
        options = {**dataset_paths(root), 'train_cfg.max_epochs': self.settings.pretrain_epochs,
                   **self._overrides('pretrain')}
        return self.train_clip_stage('pretrain', PRETRAIN_CONFIG, [data], options)

    def clim(self, data: dict, pretrain: dict) -> dict:
        root = data['result']['root']
        options = {**dataset_paths(root), 'train_cfg.max_epochs': self.settings.clim_epochs,
                   'model.clip.pretrained': pretrain['result']['clip_checkpoint'], **self._overrides('clim')}
        return self.train_clip_stage('clim', CLIM_CONFIG, [data, pretrain], options)

    def region(self, data: dict, checkpoints: dict[str, dict], mode: str = 'v2') -> dict:
        """Region recognition (val set) of each CLIP checkpoint with one dense ``mode``, same config.

        ``v2`` scores boxes, masks and crops (stage ``region``); the other modes boxes and masks only
        (stage ``region_<mode>``: crops do not use the dense map).
        """
        if mode not in REGION_MODES:
            raise ValueError(f'region mode must be one of {REGION_MODES}, got {mode!r}')
        root = data['result']['root']
        mode_options = {} if mode == 'v2' else {'model.region_eval.mode': mode,
                                                'model.region_eval.with_crops': False}
        name = 'region' if mode == 'v2' else f'region_{mode}'
        key = ['region', config_text(CLIM_CONFIG), data['key'], {k: v['key'] for k, v in checkpoints.items()},
               mode_options, 'PredictedClassShareMetric']

        def evaluate(stage_dir: Path) -> dict:
            out = {}
            for ckpt_name, stage in checkpoints.items():
                options = {**dataset_paths(root), 'model.clip.pretrained': stage['result']['clip_checkpoint'],
                           **mode_options}
                cfg = load_demo_config(CLIM_CONFIG, stage_dir / ckpt_name, options)
                cfg.test_evaluator = [cfg.test_evaluator, dict(type='PredictedClassShareMetric')]
                out[ckpt_name] = _scalar_metrics(_runner(cfg).test())
            return out

        return self.cache.run(name, key, evaluate)

    def embed(self, data: dict, clip_stage: dict, name: str = 'embed') -> dict:
        root = data['result']['root']
        key = ['embed', data['key'], clip_stage['key'], demo_templates()]

        def run(stage_dir: Path) -> dict:
            import numpy as np

            from clim.models import build_clip

            names = class_names(root)
            clip = build_clip(pretrained=clip_stage['result']['clip_checkpoint']).eval()
            emb = clip.encode_class_names(list(names), templates=demo_templates())
            emb = emb.detach().cpu().numpy().astype(np.float32)
            path = stage_dir / 'class_embeddings.npy'
            np.save(path, emb)
            return {'class_embeddings': str(path), 'classes': list(names)}

        return self.cache.run(name, key, run)

    def fvit(self, data: dict, clip_stage: dict, embed: dict, name: str = 'fvit') -> dict:
        root = data['result']['root']
        options = {**detection_paths(root), 'train_cfg.max_epochs': self.settings.fvit_epochs,
                   'train_dataloader.dataset.indices': self.settings.fvit_images,
                   'model.backbone.clip_cfg.pretrained': clip_stage['result']['clip_checkpoint'],
                   'model.roi_head.bbox_head.class_embeddings': embed['result']['class_embeddings'],
                   **self._overrides('fvit')}
        key = ['fvit', config_text(FVIT_CONFIG), options, data['key'], clip_stage['key'], embed['key']]

        def train(stage_dir: Path) -> dict:
            cfg = load_demo_config(FVIT_CONFIG, stage_dir, options)
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
            cfg = load_demo_config(FVIT_CONFIG, stage_dir, options)
            ann = osp.join(root, 'annotations', 'instances_val.json')
            cfg.test_evaluator = [dict(type='OVCocoMetric', ann_file=ann),
                                  dict(type='OVCocoChanceMetric', ann_file=ann, seed=self.settings.seed)]
            cfg.load_from = fvit['result']['checkpoint']
            return _scalar_metrics(_runner(cfg).test())

        return self.cache.run(name, key, evaluate)

    def _detector(self, stage_dir: Path, fvit: dict):
        from ovdet.apis import load_detector

        cfg = load_demo_config(FVIT_CONFIG, stage_dir, dict(fvit['result']['options']))
        return load_detector(cfg, fvit['result']['checkpoint'], device='cpu')

    def inference(self, data: dict, fvit: dict) -> dict:
        root = data['result']['root']
        key = ['inference', fvit['key'], self.settings.vocab, self.settings.demo_image_index, demo_templates()]

        def run(stage_dir: Path) -> dict:
            from ovdet.apis import detect

            model = self._detector(stage_dir, fvit)
            images = sorted((Path(root) / 'images' / 'val').iterdir())
            image = images[self.settings.demo_image_index % len(images)]
            out = stage_dir / 'detections.png'
            vocab = [v.strip() for v in self.settings.vocab.split(',') if v.strip()]
            result = detect(str(image), vocab, model=model, out_file=str(out), templates=demo_templates())
            found = _describe_detections(result, vocab)
            return {'image': str(image), 'png': str(out), 'vocabulary': vocab, 'detections': found}

        return self.cache.run('inference', key, run)

    def picture(self, data: dict, fvit: dict) -> dict:
        """The first ``settings.picture_images`` val images with ground truth and the detector's boxes
        (its training vocabulary, the one ``ov_eval`` scores), novel classes marked."""
        from . import picture

        root = data['result']['root']
        key = ['picture', fvit['key'], self.settings.picture_images, picture.LAYOUT]

        def run(stage_dir: Path) -> dict:
            import numpy as np
            from PIL import Image

            from ovdet.apis import detect

            model = self._detector(stage_dir, fvit)
            classes = list(model.dataset_meta.get('classes') or class_names(root))
            novel = set(class_names(root, 'novel'))
            panels = []
            for entry in _val_ground_truth(root)[:self.settings.picture_images]:
                result = detect(entry['path'], model=model).pred_instances
                detections = [picture.Box(box=[float(v) for v in b], label=classes[int(label)],
                                          novel=classes[int(label)] in novel, score=float(score))
                              for b, label, score in zip(result.bboxes, result.labels, result.scores)]
                gt = [picture.Box(box=b, label=name, novel=name in novel) for b, name in entry['boxes']]
                image = np.asarray(Image.open(entry['path']).convert('RGB'))
                panels.append(picture.Panel(image=image, title=Path(entry['path']).name, truth=gt,
                                            detections=detections))
            out = stage_dir / 'val_grid.png'
            grid = picture.draw_grid(panels)
            grid.save(out)
            drawn = [[{'label': d.label, 'novel': d.novel, 'score': round(d.score, 3)}
                      for d in picture.shown_detections(p)] for p in panels]
            return {'png': str(out), 'panels': len(panels), 'size': list(grid.size),
                    'images': [p.title for p in panels],
                    'truth': [[{'label': b.label, 'novel': b.novel} for b in p.truth] for p in panels],
                    'drawn_detections': drawn}

        return self.cache.run('picture', key, run)


# -- helpers -----------------------------------------------------------------------------------
def class_names(root: str, split: str = 'all') -> list[str]:
    """The benchmark's class names (``class_names/<split>.txt``: ``all``, ``base`` or ``novel``)."""
    return [n.strip() for n in (Path(root) / 'class_names' / f'{split}.txt').read_text().splitlines() if n.strip()]


def _val_ground_truth(root: str) -> list[dict]:
    """The val images in file order, each ``{'path', 'boxes': [([x1, y1, x2, y2], class name), ...]}``."""
    gt = json.loads((Path(root) / 'annotations' / 'instances_val.json').read_text())
    names = {c['id']: c['name'] for c in gt['categories']}
    boxes: dict[int, list] = {}
    for a in gt['annotations']:
        x, y, w, h = a['bbox']
        boxes.setdefault(a['image_id'], []).append(([x, y, x + w, y + h], names[a['category_id']]))
    images = sorted(gt['images'], key=lambda im: im['file_name'])
    return [{'path': str(Path(root) / 'images' / 'val' / im['file_name']), 'boxes': boxes.get(im['id'], [])}
            for im in images]


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
