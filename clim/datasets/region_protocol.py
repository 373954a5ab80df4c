"""Named data protocols of the region-recognition evaluation (which regions, crops, masks, padding).

Two protocols, each a frozen :class:`RegionProtocol` of every choice that changes the numbers:

* ``'reference'``: what the CLIM / CLIPSelf reference code computes (``COCOPanopticDataset`` and
  ``zero_shot.py`` of both repositories; ``clim.md`` / ``clipself.md``, "region recognition").
* ``'reference-antialias'``: the same with the bicubic mask resize antialiased, what the reference
  computes under torchvision >= 0.17 (its requirements pin no version; see ``mask_antialias``).
* ``'clim-ovd'``: this project's earlier choices, kept by name (crowd regions left out, crops cut
  from the resized input and stretched, masks by cell coverage, ...).

Each field that differs is a row of ``docs/reference_parity.md`` ("Region-recognition evaluation").
The dataset (region selection, category order), :class:`~clim.datasets.region_transforms.RegionEvalTransform`
(boxes, crops, masks, image) and the metric (per-class rounding) read the same object.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ['RegionProtocol', 'REGION_PROTOCOLS', 'get_region_protocol']


@dataclass(frozen=True)
class RegionProtocol:
    """Every data-side choice of the region evaluation.

    Attributes:
        name: how outputs label the protocol.
        category_order: class index order, ``'id'`` (categories sorted by id) or ``'json'`` (file order).
        keep_crowd: keep ``iscrowd`` segments.
        max_segments: per image, only the first N segments (file order) are considered, before any
            filtering; None = all.
        min_box_size / max_box_size: keep a region when ``min**2 <= w * h <= max**2`` for its box in
            original pixels (None: no bound). The reference's box for stuff is its mask extent.
        stuff_box: ``'mask_extent'`` (x1, y1 = the mask's *inclusive* max indices, so w = max - min)
            or ``'annotation'`` (the json bbox).
        crop_source: ``'original'`` (crops cut from the original-resolution image in the pipeline) or
            ``'input'`` (cut in the model from the resized, normalized input).
        thing_crop_scale: things are cropped at this multiple of their box about its centre (clipped
            to the image); stuff at its box.
        crop_resize: ``'letterbox'`` (longer side to the crop size, aspect kept, centred black pad) or
            ``'stretch'`` (bicubic to a square).
        image_pad: ``'black'`` (the resized image padded right/bottom with pixel 0 to the square input
            size *before* normalization) or ``'normalized_zero'`` (the data preprocessor pads 0 after it).
        box_scale: ``'single'`` (boxes times one factor, size / longer side) or ``'per_axis'``
            (new / old width and height apart, which differ by the rounding of the resized size).
        mask_cells: ``'bicubic'`` (the float mask resized, longer side to the map size, padded, cells
            > 0) or ``'coverage'`` (resized nearest with the image, cells at least half covered, else
            the best-covered cell).
        mask_antialias: torchvision's ``antialias`` of the bicubic mask resize. torchvision >= 0.17
            defaults to True for tensors, older versions computed False; the reference pins neither.
        round_class_acc_fp16: each per-class accuracy (a fraction) is rounded to float16 before the
            mean over classes.
    """

    name: str
    category_order: str
    keep_crowd: bool
    max_segments: int | None
    min_box_size: float | None
    max_box_size: float | None
    stuff_box: str
    crop_source: str
    thing_crop_scale: float
    crop_resize: str
    image_pad: str
    box_scale: str
    mask_cells: str
    mask_antialias: bool
    round_class_acc_fp16: bool

    def __post_init__(self) -> None:
        choices = dict(category_order=('id', 'json'), stuff_box=('mask_extent', 'annotation'),
                       crop_source=('original', 'input'), crop_resize=('letterbox', 'stretch'),
                       image_pad=('black', 'normalized_zero'), box_scale=('single', 'per_axis'),
                       mask_cells=('bicubic', 'coverage'))
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f'region protocol {self.name!r}: {field} must be one of {allowed}, '
                                 f'got {getattr(self, field)!r}')
        if self.crop_source == 'input' and self.crop_resize == 'letterbox':
            raise ValueError(f'region protocol {self.name!r}: letterboxed crops are cut in the pipeline '
                             f'(crop_source="original")')


REGION_PROTOCOLS: dict[str, RegionProtocol] = {
    'reference': RegionProtocol(
        name='reference', category_order='id', keep_crowd=True, max_segments=100, min_box_size=8,
        max_box_size=1024, stuff_box='mask_extent', crop_source='original', thing_crop_scale=1.5,
        crop_resize='letterbox', image_pad='black', box_scale='single', mask_cells='bicubic',
        mask_antialias=False, round_class_acc_fp16=True),
    'clim-ovd': RegionProtocol(
        name='clim-ovd', category_order='json', keep_crowd=False, max_segments=None, min_box_size=None,
        max_box_size=None, stuff_box='annotation', crop_source='input', thing_crop_scale=1.0,
        crop_resize='stretch', image_pad='normalized_zero', box_scale='per_axis', mask_cells='coverage',
        mask_antialias=False, round_class_acc_fp16=False),
}
REGION_PROTOCOLS['reference-antialias'] = dataclasses.replace(REGION_PROTOCOLS['reference'],
                                                              name='reference-antialias', mask_antialias=True)


def get_region_protocol(protocol: str | RegionProtocol | dict = 'clim-ovd', **overrides) -> RegionProtocol:
    """A protocol by name (``'reference'`` / ``'clim-ovd'``), or a given one, with fields replaced.

    A config may pass ``dict(name='reference', mask_antialias=True)``: the named protocol with that
    field changed; the result keeps the name, suffixed by the changed fields (outputs stay labelled).
    """
    if isinstance(protocol, dict):
        protocol = dict(protocol)
        overrides = {**{k: v for k, v in protocol.items() if k != 'name'}, **overrides}
        protocol = protocol.get('name', 'clim-ovd')
    if isinstance(protocol, str):
        if protocol not in REGION_PROTOCOLS:
            raise ValueError(f'unknown region protocol {protocol!r}; choose from {sorted(REGION_PROTOCOLS)}')
        protocol = REGION_PROTOCOLS[protocol]
    fields = {f.name for f in dataclasses.fields(RegionProtocol)} - {'name'}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f'unknown region protocol field(s) {unknown}; fields: {sorted(fields)}')
    changed = {k: v for k, v in overrides.items() if getattr(protocol, k) != v}
    if not changed:
        return protocol
    name = protocol.name + ''.join(f'+{k}={v}' for k, v in sorted(changed.items()))
    name = name.replace('=True', '').replace('=False', '=off')
    return dataclasses.replace(protocol, name=name, **changed)
