"""Prompt templates for turning class names into CLIP text embeddings (template ensembles).

Each template holds one ``{}`` for the class name. ``FULL_TEMPLATES`` is the standard 80-prompt
ensemble of CLIP zero-shot classification that CLIP-based open-vocabulary detectors reuse;
``SHORT_TEMPLATES`` is a small photo-style subset for when 80 text passes per class are too many.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ['FULL_TEMPLATES', 'SHORT_TEMPLATES', 'NO_TEMPLATES', 'get_templates']

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
        if templates not in _NAMED:
            raise ValueError(f'templates must be one of {sorted(_NAMED)} or a list of strings, '
                             f'got {templates!r}')
        return _NAMED[templates]
    out = tuple(templates)
    if not out or any(t.count('{}') != 1 for t in out):
        raise ValueError('each template must contain exactly one "{}" placeholder')
    return out
