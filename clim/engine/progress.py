"""A progress bar for MMEngine runs, for people watching a terminal."""
from __future__ import annotations

import logging
from typing import Any

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from tqdm import tqdm


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """One tqdm bar over the training iterations and one per evaluation loop.

    Args:
        desc: text in front of the bar.
        quiet_console: raise the console log handler to WARNING so the bar stays readable; the
            full log still goes to the work dir's log file.
    """

    priority = 'VERY_LOW'

    def __init__(self, desc: str = 'train', quiet_console: bool = True) -> None:
        self.desc = desc
        self.quiet_console = quiet_console
        self._bar: tqdm | None = None
        self._eval_bar: tqdm | None = None

    def before_run(self, runner: Any) -> None:
        if self.quiet_console:
            for handler in runner.logger.handlers:
                if type(handler) is logging.StreamHandler:
                    handler.setLevel(logging.WARNING)

    def before_train(self, runner: Any) -> None:
        self._bar = tqdm(total=runner.max_iters, initial=runner.iter, desc=self.desc, unit='it',
                         dynamic_ncols=True, leave=True)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: dict | None = None) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if outputs:
            loss = outputs.get('loss')
            if loss is not None:
                self._bar.set_postfix(loss=f'{float(loss.detach()):.3f}', refresh=False)

    def after_train(self, runner: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _start_eval(self, runner: Any, loop: Any, name: str) -> None:
        self._eval_bar = tqdm(total=len(loop.dataloader), desc=f'{self.desc}: {name}', unit='batch',
                              dynamic_ncols=True, leave=False)

    def before_val_epoch(self, runner: Any) -> None:
        self._start_eval(runner, runner.val_loop, 'val')

    def before_test_epoch(self, runner: Any) -> None:
        self._start_eval(runner, runner.test_loop, 'test')

    def _eval_step(self, *args: Any, **kwargs: Any) -> None:
        if self._eval_bar is not None:
            self._eval_bar.update(1)

    after_val_iter = _eval_step
    after_test_iter = _eval_step

    def _end_eval(self, runner: Any, metrics: dict | None = None) -> None:
        if self._eval_bar is not None:
            self._eval_bar.close()
            self._eval_bar = None

    after_val_epoch = _end_eval
    after_test_epoch = _end_eval
