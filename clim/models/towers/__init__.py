"""Image-tower adapters: one interface (:mod:`.base`), one adapter module per family (:mod:`.eva`, ...).

Only the interface is imported here; family modules import upstream libraries (timm) and are imported
where they are used, so ``clim.models.dense`` may depend on the interface without a cycle."""
from .base import ImageTower, ViTImageTower, tokens_to_map

__all__ = ['ImageTower', 'ViTImageTower', 'tokens_to_map']
