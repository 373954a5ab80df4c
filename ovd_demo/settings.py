"""The sizes of the demo benchmark and its training schedules."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoSettings:
    """Sizes of the demo benchmark. ``full`` is ``make demo``; ``smoke`` is for the tests.

    Data settings go to :func:`ovd_demo.shapes.generate_shapes_dataset`; the epochs and
    ``overrides`` (``{stage: {config key: value}}``) to the stage configs. Why the data settings are
    what they are (upright shapes, bare captions, large objects): docs/demo.md.
    """

    num_train: int = 6000
    num_val: int = 200
    image_size: int = 128
    obj_size: tuple[int, int] = (38, 77)
    max_objects: int = 2
    num_captions: int = 0
    num_shape_captions: int = 2
    plain_captions: bool = True
    rotate: bool = False
    seed: int = 0
    pretrain_epochs: int = 10
    clim_epochs: int = 6
    fvit_epochs: int = 1
    fvit_images: int = 2000  # F-ViT trains on the first N base-annotated train images
    vocab: str = 'star, ring, arrow, circle, square'
    # Also train and evaluate F-ViT on the CLIP before CLIM: CLIM's effect on detection.
    compare_without_clim: bool = True
    demo_image_index: int = 0
    picture_images: int = 8  # val images in the picture grid (ground truth and detections)
    overrides: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def preset(cls, name: str) -> DemoSettings:
        if name == 'full':
            return cls()
        if name == 'smoke':
            # Real code paths at a size that runs in well under a minute (CLIM needs >= 29 images
            # per batch for one mosaic group, hence 32 train images).
            return cls(num_train=32, num_val=4, pretrain_epochs=1, clim_epochs=1, fvit_epochs=1, fvit_images=32,
                       overrides={'pretrain': {'train_dataloader.batch_size': 32},
                                  'clim': {'train_dataloader.batch_size': 32},
                                  'fvit': {'train_dataloader.batch_size': 8}})
        raise ValueError(f'unknown demo preset {name!r} (full, smoke)')
