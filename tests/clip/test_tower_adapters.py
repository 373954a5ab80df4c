"""The tower design (issue: CLIP towers as adapters): every CLIP class only builds its modules and picks its
adapters; the interface is written once in ``TowerCLIP`` and the ViT algorithms once in ``ViTImageTower``."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from clim.models import CLIPModel, EvaCLIPModel, HFTextCLIPModel, TowerCLIP
from clim.models.towers import ViTImageTower, build_image_tower
from clim.models.towers.eva import EvaImageTower
from clim.models.towers.open_clip_vit import OpenCLIPViTTower
from clim.models.towers.resnet import ModifiedResNetTower
from clim.models.towers.timm_vit import TimmViTTower

# Methods and properties (class settings such as ``records_type`` are meant to be set per class).
_INTERFACE = {name for name, value in vars(TowerCLIP).items()
              if not name.startswith('__') and (callable(value) or isinstance(value, property))}
_VIT_ALGORITHMS = ('v2_tokens', 'project', 'dense', 'encode', 'encode_any_size')


@pytest.mark.parametrize('cls', [CLIPModel, HFTextCLIPModel, EvaCLIPModel])
def test_clip_classes_do_not_override_the_interface(cls: type) -> None:
    # A class that re-implements a feature / text / locking method branches on its towers again.
    overridden = sorted(_INTERFACE & {name for name in vars(cls) if not name.startswith('__')})
    assert not overridden, f'{cls.__name__} overrides TowerCLIP members {overridden}'


@pytest.mark.parametrize('cls', [OpenCLIPViTTower, TimmViTTower, EvaImageTower])
def test_vit_families_implement_pieces_not_algorithms(cls: type) -> None:
    assert issubclass(cls, ViTImageTower)
    redefined = [name for name in _VIT_ALGORITHMS if name in vars(cls)]
    assert not redefined, f'{cls.__name__} redefines {redefined}: the algorithm belongs in ViTImageTower'


def test_adapter_is_picked_once_per_family(tiny_model: CLIPModel, tiny_rn_model: CLIPModel) -> None:
    assert type(tiny_model.image_tower) is OpenCLIPViTTower and tiny_model.image_tower.module is tiny_model.visual
    assert type(tiny_rn_model.image_tower) is ModifiedResNetTower
    with pytest.raises(NotImplementedError, match='Linear'):
        build_image_tower(nn.Linear(2, 2))


def test_adapter_follows_the_module_through_moves_and_dtype(tiny_model: CLIPModel) -> None:
    # The adapter holds a reference: .to() / .double() move the parameters in place, so it still runs them.
    images = torch.randn(1, 3, 64, 48, dtype=torch.float64)
    model = tiny_model.double()
    with torch.no_grad():
        dense = model.dense_features(images)
        tokens = model.vit_tokens(images, (-1,))[1]
    assert dense.dtype == torch.float64 and dense.shape == (1, model.embed_dim, 4, 3)
    torch.testing.assert_close(model.project_dense(tokens), dense)


def test_resnet_has_no_vit_paths(tiny_rn_model: CLIPModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match='needs a ViT image tower; this model has a Modified ResNet'):
        tiny_rn_model.vit_tokens(images, (0,))
    with pytest.raises(ValueError, match='only support dense mode "v2"'):
        tiny_rn_model.dense_features(images, mode='plain')


def test_non_class_token_vit_builds_and_refuses_only_the_token_paths(tiny_clip_cfg: dict) -> None:
    # The upstream forward works for any pooling; only the paths that read the class token refuse it.
    tiny_clip_cfg['vision_cfg']['pool_type'] = 'avg'
    model = CLIPModel(model_cfg=tiny_clip_cfg).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images, normalize=False), model.visual(images))
        with pytest.raises(NotImplementedError, match='class-token ViT'):
            model.dense_features(images)
