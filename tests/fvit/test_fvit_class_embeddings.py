"""A class-embedding file that does not match the dataset's classes fails at build, clearly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_count_mismatch_names_the_file_and_both_counts(tiny_model_cfg, fvit_workspace: dict,
                                                       tmp_path: Path) -> None:
    from mmdet.registry import MODELS

    from ovdet.models import ClassEmbeddingError

    bad = tmp_path / 'nine_classes.npy'
    np.save(bad, np.load(fvit_workspace['embeddings'])[:9])
    tiny_model_cfg.model.roi_head.bbox_head.class_embeddings = str(bad)
    with pytest.raises(ClassEmbeddingError) as err:
        MODELS.build(tiny_model_cfg.model)
    msg = str(err.value)
    assert str(bad) in msg and 'hold 9 classes' in msg and 'has 10 classes' in msg


def test_background_row(tiny_model_cfg, fvit_workspace: dict, tmp_path: Path) -> None:
    from mmdet.registry import MODELS

    from ovdet.models import ClassEmbeddingError

    emb = np.load(fvit_workspace['embeddings'])
    with_bg = tmp_path / 'with_bg.npy'
    np.save(with_bg, np.concatenate([emb, emb[:1]]))
    head = tiny_model_cfg.model.roi_head.bbox_head
    head.class_embeddings = str(with_bg)
    with pytest.raises(ClassEmbeddingError, match='background_row=True'):
        MODELS.build(tiny_model_cfg.model)
    head.background_row = True
    model = MODELS.build(tiny_model_cfg.model)
    np.testing.assert_allclose(model.roi_head.bbox_head.classifier.class_embeddings.numpy(), emb, atol=1e-6)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    from ovdet.models import ClassEmbeddingError, load_class_embeddings

    with pytest.raises(ClassEmbeddingError, match='not found.*gen_text_embeddings'):
        load_class_embeddings(tmp_path / 'absent.npy', num_classes=3)
    np.save(tmp_path / 'flat.npy', np.ones(4, dtype=np.float32))
    with pytest.raises(ClassEmbeddingError, match='expected a \\(classes, dim\\) array'):
        load_class_embeddings(tmp_path / 'flat.npy')


def test_dataset_class_count_mismatch_fails_before_training(tiny_model_cfg) -> None:
    from types import SimpleNamespace

    from mmdet.registry import MODELS

    from ovdet.models import ClassVocabularyCheckHook

    assert dict(type='ClassVocabularyCheckHook') in tiny_model_cfg.custom_hooks
    model = MODELS.build(tiny_model_cfg.model)
    base_only = SimpleNamespace(metainfo=dict(classes=('circle', 'square', 'triangle')),
                                ann_file='train.json')
    loader = SimpleNamespace(dataset=base_only)
    runner = SimpleNamespace(model=model, train_loop=SimpleNamespace(dataloader=loader))
    expected = (r'train dataset \(train.json\) has 3 classes but the detector has 10 '
                r'\(class embeddings .*tiny.npy\)')
    with pytest.raises(ValueError, match=expected):
        ClassVocabularyCheckHook().before_train(runner)
    base_only.metainfo['classes'] = tuple(f'c{i}' for i in range(10))
    ClassVocabularyCheckHook().before_train(runner)
