"""The built-in LVIS v1 class list (``--classes lvis_v1``): 1203 names in category-id order, and the
embedding file tools/gen_text_embeddings.py writes from it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lvis_test_utils import REPO_ROOT, run_tool

# LVIS v1 category ids checked by hand against an independent id -> name listing of lvis_v1_val.json; ids
# where the alphabetical order of names and the id order part ways (ids follow the WordNet synsets).
KNOWN_IDS = {1: 'aerosol_can', 3: 'airplane', 12: 'apple', 23: 'trash_can', 46: 'Band_Aid', 80: 'cow',
             106: 'pirate_flag', 136: 'bow_(weapon)', 138: 'bow-tie', 207: 'car_(automobile)', 228: 'CD_player',
             247: 'poker_chip', 789: 'pepper', 793: 'person', 795: 'pew_(church_bench)', 1203: 'zucchini'}


def test_lvis_v1_names_are_the_1203_in_category_id_order() -> None:
    from clim.models import get_class_names

    names = get_class_names('lvis_v1')
    assert len(names) == 1203 == len(set(names))
    for cat_id, name in KNOWN_IDS.items():
        assert names[cat_id - 1] == name, (cat_id, names[cat_id - 1], name)
    assert names != tuple(sorted(names))  # not an alphabetical list


def test_vild_recipe_words_the_raw_json_names() -> None:
    from clim.models import get_class_names, prompt_name
    from clim.models.templates import vild_prompts

    raw = get_class_names('lvis_v1')  # what --templates vild encodes (the json's spelling)
    assert 'There is a bow (weapon) in the scene.' in vild_prompts(raw[135])
    assert 'There is a car (automobile) in the scene.' in vild_prompts(raw[206])
    assert prompt_name(raw[206]) == 'car (automobile)'  # the other template sets


def test_gen_text_embeddings_writes_1203_rows_in_id_order(lvis_workspace: dict, tmp_path: Path) -> None:
    from clim.models import CLIPModel

    out = tmp_path / 'lvis.npy'
    proc = run_tool([str(REPO_ROOT / 'tools' / 'gen_text_embeddings.py'), '--pretrained',
                     str(lvis_workspace['clip_ckpt']), '--classes', 'lvis_v1', '--templates', 'none',
                     '--out', str(out)], cwd=tmp_path)
    assert '1203 classes' in proc.stdout
    emb = np.load(out)
    assert emb.shape[0] == 1203 and emb.dtype == np.float32
    clip = CLIPModel(pretrained=str(lvis_workspace['clip_ckpt'])).eval()
    with torch.no_grad():
        ref = clip.encode_class_names(['aerosol can', 'person', 'car (automobile)', 'zucchini'],
                                      templates='none').numpy()
    np.testing.assert_allclose(emb[[0, 792, 206, 1202]], ref, atol=1e-5)


def test_unknown_list_is_named() -> None:
    from clim.models import get_class_names

    with pytest.raises(ValueError, match="'lvis'.*lvis_v1"):
        get_class_names('lvis')
