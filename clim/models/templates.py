"""Prompt templates for turning class names into CLIP text embeddings (template ensembles).

Each template holds one ``{}`` for the class name. ``FULL_TEMPLATES`` is the standard 80-prompt
ensemble of CLIP zero-shot classification that CLIP-based open-vocabulary detectors reuse;
``SHORT_TEMPLATES`` is a small photo-style subset for when 80 text passes per class are too many.

``VILD_TEMPLATES`` is the 63-prompt ViLD set the CLIM / CLIPSelf references build their class
embeddings with (``detectors.md``, "Class embeddings (reference)"). Its prompts depend on the name
(``{article}``) and get a "This is " prefix, so they are not plain ``{}`` templates: encode them
with :func:`encode_vild_class_names`, which runs any model's ``encode_class_names``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

__all__ = ['FULL_TEMPLATES', 'SHORT_TEMPLATES', 'NO_TEMPLATES', 'VILD_TEMPLATES', 'get_templates',
           'vild_name', 'vild_article', 'vild_templates_for', 'vild_prompts', 'encode_vild_class_names']

FULL_TEMPLATES: tuple[str, ...] = (
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'a photo of a {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
    'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.',
    'a plushie {}.',
    'a photo of the nice {}.',
    'a photo of the small {}.',
    'a photo of the weird {}.',
    'the cartoon {}.',
    'art of the {}.',
    'a drawing of the {}.',
    'a photo of the large {}.',
    'a black and white photo of a {}.',
    'the plushie {}.',
    'a dark photo of a {}.',
    'itap of a {}.',
    'graffiti of the {}.',
    'a toy {}.',
    'itap of my {}.',
    'a photo of a cool {}.',
    'a photo of a small {}.',
    'a tattoo of the {}.',
)

# Photo-like prompts only: detection regions are crops of natural photos.
SHORT_TEMPLATES: tuple[str, ...] = (
    'a photo of a {}.',
    'a photo of the {}.',
    'a photo of one {}.',
    'a photo of a small {}.',
    'a photo of a large {}.',
    'a close-up photo of a {}.',
    'a cropped photo of a {}.',
    'there is a {} in the scene.',
)

NO_TEMPLATES: tuple[str, ...] = ('{}',)

# ViLD's prompt-engineering set (Gu et al., ICLR 2022), in its order: ``{article}`` is "a" / "an" for
# the class name, ``{}`` the processed name (see :func:`vild_prompts`).
VILD_TEMPLATES: tuple[str, ...] = (
    'There is {article} {} in the scene.',
    'There is the {} in the scene.',
    'a photo of {article} {} in the scene.',
    'a photo of the {} in the scene.',
    'a photo of one {} in the scene.',
    'itap of {article} {}.',
    'itap of my {}.',
    'itap of the {}.',
    'a photo of {article} {}.',
    'a photo of my {}.',
    'a photo of the {}.',
    'a photo of one {}.',
    'a photo of many {}.',
    'a good photo of {article} {}.',
    'a good photo of the {}.',
    'a bad photo of {article} {}.',
    'a bad photo of the {}.',
    'a photo of a nice {}.',
    'a photo of the nice {}.',
    'a photo of a cool {}.',
    'a photo of the cool {}.',
    'a photo of a weird {}.',
    'a photo of the weird {}.',
    'a photo of a small {}.',
    'a photo of the small {}.',
    'a photo of a large {}.',
    'a photo of the large {}.',
    'a photo of a clean {}.',
    'a photo of the clean {}.',
    'a photo of a dirty {}.',
    'a photo of the dirty {}.',
    'a bright photo of {article} {}.',
    'a bright photo of the {}.',
    'a dark photo of {article} {}.',
    'a dark photo of the {}.',
    'a photo of a hard to see {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of {article} {}.',
    'a low resolution photo of the {}.',
    'a cropped photo of {article} {}.',
    'a cropped photo of the {}.',
    'a close-up photo of {article} {}.',
    'a close-up photo of the {}.',
    'a jpeg corrupted photo of {article} {}.',
    'a jpeg corrupted photo of the {}.',
    'a blurry photo of {article} {}.',
    'a blurry photo of the {}.',
    'a pixelated photo of {article} {}.',
    'a pixelated photo of the {}.',
    'a black and white photo of the {}.',
    'a black and white photo of {article} {}.',
    'a plastic {}.',
    'the plastic {}.',
    'a toy {}.',
    'the toy {}.',
    'a plushie {}.',
    'the plushie {}.',
    'a cartoon {}.',
    'the cartoon {}.',
    'an embroidered {}.',
    'the embroidered {}.',
    'a painting of the {}.',
    'a painting of a {}.',
)

_NAMED = {'full': FULL_TEMPLATES, 'short': SHORT_TEMPLATES, 'none': NO_TEMPLATES}


def get_templates(templates: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """Resolve a template choice.

    Args:
        templates: ``None`` or ``'full'`` (80 prompts), ``'short'``, ``'none'`` (the bare name), or an
            explicit sequence of strings each holding exactly one ``{}``.

    Returns:
        A non-empty tuple of template strings.
    """
    if templates is None:
        return FULL_TEMPLATES
    if isinstance(templates, str):
        if templates == 'vild':
            raise ValueError("the 'vild' prompts depend on each class name: encode them with "
                             "clim.models.templates.encode_vild_class_names(model, names)")
        if templates not in _NAMED:
            raise ValueError(f'templates must be one of {sorted(_NAMED)} or a list of strings, '
                             f'got {templates!r}')
        return _NAMED[templates]
    out = tuple(templates)
    if not out or any(t.count('{}') != 1 for t in out):
        raise ValueError('each template must contain exactly one "{}" placeholder')
    return out


def vild_name(name: str) -> str:
    """A class name as the ViLD recipe words it: lower-cased, ``_`` -> space, ``/`` -> " or ",
    trailing dots removed (``'Hot_Dog.'`` -> ``'hot dog'``). Nothing else changes (panoptic names keep
    their dashes: ``'sky-other-merged'``)."""
    return name.replace('_', ' ').replace('/', ' or ').lower().rstrip('.')


def vild_article(name: str) -> str:
    """``'an'`` if the *unprocessed* name starts with a lower-case vowel, else ``'a'``. The reference
    tests the raw name, so ``'Apple'`` gets ``'a'``: kept, as the reference computes it."""
    return 'an' if name[:1] in tuple('aeiou') else 'a'


def vild_templates_for(name: str) -> tuple[str, ...]:
    """The 63 ViLD prompts of ``name`` as ``{}`` templates for its processed name: the article filled
    in, and "This is " before every prompt that starts with "a" or "the" (whatever the name, since no
    template starts with the name)."""
    article = vild_article(name)
    out = []
    for template in VILD_TEMPLATES:
        text = template.replace('{article}', article)
        out.append('This is ' + text if text.startswith(('a', 'the')) else text)
    return tuple(out)


def vild_prompts(name: str) -> list[str]:
    """The 63 prompt strings the ViLD recipe encodes for one class name."""
    processed = vild_name(name)
    return [t.format(processed) for t in vild_templates_for(name)]


class _ClassNameEncoder(Protocol):
    def encode_class_names(self, names: Sequence[str], templates: Sequence[str] | None = ...,
                           batch_size: int = ...) -> torch.Tensor: ...


def encode_vild_class_names(model: _ClassNameEncoder, names: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Class embeddings with the ViLD 63-prompt recipe of the CLIM / CLIPSelf references.

    Per class: its 63 prompts (:func:`vild_prompts`), each embedding L2-normalized, their mean
    renormalized -- which is what ``model.encode_class_names`` computes for one template list, so the
    classes are encoded in groups that share their templates (one group per article).

    Args:
        model: a ``CLIPModel`` (or anything with its ``encode_class_names``).
        names: C raw class names (e.g. COCO panoptic category names; processed here).
        batch_size: prompts per text forward.

    Returns:
        (C, D) float32, L2-normalized, rows in ``names`` order.
    """
    names = list(names)
    if not names:
        raise ValueError('encode_vild_class_names: no class names given')
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, name in enumerate(names):
        if not name:
            raise ValueError(f'encode_vild_class_names: class {i} has an empty name')
        groups.setdefault(vild_templates_for(name), []).append(i)
    rows: list[torch.Tensor | None] = [None] * len(names)
    for templates, idx in groups.items():
        emb = model.encode_class_names([vild_name(names[i]) for i in idx], templates=list(templates),
                                       batch_size=batch_size).float()
        for row, i in enumerate(idx):
            rows[i] = emb[row]
    return torch.stack(rows)  # type: ignore[arg-type]


class _TextEncoder(Protocol):
    embed_dim: int
    logit_scale: torch.Tensor

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor: ...

    def encode_text_trimmed(self, tokens: torch.Tensor, normalize: bool = ...) -> torch.Tensor: ...


def encode_prompt_ensemble(model: _TextEncoder, names: Sequence[str], templates: str | Sequence[str] | None = None,
                           batch_size: int = 256) -> torch.Tensor:
    """Prompt-ensemble class embeddings: per class the mean of its normalized template embeddings,
    renormalized (every CLIP class's ``encode_class_names``).

    Args:
        model: a CLIP with ``tokenize`` / ``encode_text_trimmed`` / ``embed_dim``.
        names: C class names.
        templates: ``None``/``'full'`` (80 prompts), ``'short'``, ``'none'`` or strings with one ``{}``.
        batch_size: prompts per text forward.

    Returns:
        (C, D) float32, L2-normalized.
    """
    temps = get_templates(templates)
    texts = [t.format(n) for n in names for t in temps]
    if not texts:
        return model.logit_scale.new_zeros(0, model.embed_dim, dtype=torch.float32)
    feats = torch.cat([model.encode_text_trimmed(model.tokenize(texts[i:i + batch_size])).float()
                       for i in range(0, len(texts), batch_size)])
    feats = feats.view(len(names), len(temps), -1).mean(dim=1)
    return torch.nn.functional.normalize(feats, dim=-1)
