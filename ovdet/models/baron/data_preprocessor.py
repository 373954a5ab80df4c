"""Pre-processing of BARON-KD's two-branch training batches: each branch normalized and padded alone."""
from __future__ import annotations

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

__all__ = ['BranchDataPreprocessor']


@MODELS.register_module()
class BranchDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` that, in training, splits a batch by its samples' ``branch``
    metainfo (``'det'`` / ``'kd'``, set by :class:`~ovdet.datasets.baron_kd_sources.BranchConcatDataset`)
    and pre-processes each part separately (its own padding size).

    Returns ``dict(inputs=dict(det=(B_d, 3, H, W), kd=(B_k, 3, H', W')), data_samples=dict(det=[...],
    kd=[...]))`` for such batches; batches without branch tags (and all test batches) go through
    :class:`DetDataPreprocessor` unchanged.
    """

    branches = ('det', 'kd')

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples')
        if not training or not samples or 'branch' not in samples[0].metainfo:
            return super().forward(data, training)
        inputs, outs = {}, {}
        for branch in self.branches:
            idx = [i for i, s in enumerate(samples) if s.metainfo['branch'] == branch]
            if not idx:
                raise ValueError(f'a two-branch training batch has no {branch!r} images')
            part = super().forward(dict(inputs=[data['inputs'][i] for i in idx],
                                        data_samples=[samples[i] for i in idx]), training)
            inputs[branch], outs[branch] = part['inputs'], part['data_samples']
        return dict(inputs=inputs, data_samples=outs)
