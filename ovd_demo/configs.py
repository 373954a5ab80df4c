"""The demo's configs (``configs/demo/``), loaded with the options a stage sets."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIGS = REPO_ROOT / 'configs' / 'demo'
# The config each stage runs, by its role in the demo.
PRETRAIN_CONFIG = 'clip_pretrain_demovit_shapes'
CLIM_CONFIG = 'clim_demovit_shapes'  # also the region-recognition test of any demo CLIP
FVIT_CONFIG = 'fvit_demovit_shapes'


def config_path(name: str) -> Path:
    return DEMO_CONFIGS / f'{name}.py'


def config_text(name: str) -> str:
    """The merged config as text (part of the cache key of the stages that run it)."""
    from mmengine.config import Config

    return Config.fromfile(str(config_path(name))).pretty_text


def load_demo_config(name: str, work_dir: Path, options: dict[str, Any]):
    """A demo config with ``options`` merged in, writing into ``work_dir``, with a progress bar."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config_path(name)))
    config_epochs = cfg.train_cfg.get('max_epochs')
    cfg.merge_from_dict(options)
    stretch_epoch_schedules(cfg, config_epochs, cfg.train_cfg.get('max_epochs'))
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    # Each in-process run gets its own visualizer instance (MMEngine keys them by name).
    cfg.visualizer.name = f'visualizer_{name}_{work_dir.name}'
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'ProgressBarHook']
    cfg.custom_hooks = [*hooks, dict(type='ProgressBarHook', desc=f'{_short_name(name):>8}')]
    cfg.default_hooks.logger.interval = 10 ** 6  # the progress bar replaces per-iteration console logs
    cfg.log_level = 'WARNING'  # keeps MMEngine's environment/config dump off the demo's console
    return cfg


def _short_name(name: str) -> str:
    """The progress-bar label: the config's method part (``clim_demovit_shapes`` -> ``clim``)."""
    return name.split('_demovit')[0]


def stretch_epoch_schedules(cfg, old: int | None, new: int | None) -> None:
    """Epoch-based schedulers that end with the config's training end with the demo's epochs.

    The demo sets ``train_cfg.max_epochs`` from :class:`~ovd_demo.settings.DemoSettings`; a cosine
    decay that still ran to the config's own ``max_epochs`` would stop short of zero (or sit at zero
    for the last epochs).
    """
    if old is None or new is None or old == new:
        return
    for sched in cfg.get('param_scheduler') or []:
        if sched.get('by_epoch', True) and sched.get('end') == old:
            sched['end'] = new
            if 'T_max' in sched:
                sched['T_max'] = new - sched.get('begin', 0)


def dataset_paths(root: str) -> dict[str, Any]:
    """Options pointing a CLIP stage's train / val / test data at the generated benchmark."""
    root = root.rstrip('/') + '/'
    return {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root}


def detection_paths(root: str) -> dict[str, Any]:
    """:func:`dataset_paths` plus the evaluators' ground truth (the val detection json)."""
    root = root.rstrip('/') + '/'
    ann = root + 'annotations/instances_val.json'
    return {**dataset_paths(root), 'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann}


@functools.lru_cache(maxsize=1)
def _demo_templates_cached() -> tuple[str, ...]:
    from mmengine.config import Config

    return tuple(Config.fromfile(str(config_path(CLIM_CONFIG))).model.region_eval.templates)


def demo_templates() -> list[str]:
    """The prompt templates of the demo CLIP (``demo_templates`` of its base config), parsed once."""
    return list(_demo_templates_cached())
