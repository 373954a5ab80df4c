"""A runtime check that the dataset's classes and the detector's class embeddings agree in number."""
from __future__ import annotations

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

__all__ = ['ClassVocabularyCheckHook']


@HOOKS.register_module()
class ClassVocabularyCheckHook(Hook):
    """Fail before the first iteration if a dataloader's classes do not match the detector's classes.

    The class-embedding file is checked against ``bbox_head.num_classes`` when the head is built;
    this hook closes the remaining gap, a dataset whose class list (e.g. read from a json listing only
    the base categories) differs from ``num_classes``, which would otherwise silently shift labels.

    Input: the runner (its model must have ``roi_head.bbox_head.num_classes``); raises ``ValueError``
    naming the embedding file, the dataset and both counts.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def check(model, dataset, what: str) -> None:
        """Compare ``len(dataset.metainfo['classes'])`` with the model's number of classes."""
        if is_model_wrapper(model):
            model = model.module
        head = getattr(getattr(model, 'roi_head', None), 'bbox_head', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if head is None or not classes:
            return
        if len(classes) != head.num_classes:
            source = getattr(getattr(head, 'fc_cls', None), 'source', '<unknown>')
            ann = getattr(dataset, 'ann_file', '<dataset>')
            raise ValueError(
                f'the {what} dataset ({ann}) has {len(classes)} classes but the detector has '
                f'{head.num_classes} (class embeddings {source}); set the dataset\'s metainfo classes to '
                f'the embedding file\'s class list, in the same order.')

    def before_train(self, runner) -> None:
        self.check(runner.model, runner.train_loop.dataloader.dataset, 'train')

    def before_val(self, runner) -> None:
        self.check(runner.model, runner.val_loop.dataloader.dataset, 'val')

    def before_test(self, runner) -> None:
        self.check(runner.model, runner.test_loop.dataloader.dataset, 'test')
