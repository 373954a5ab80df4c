"""BARON-style bag-of-regions distillation: sampling, pseudo words, queued InfoNCE, the detector."""
from .bag_encoder import PseudoWordProjector, encode_word_sequences, special_token_embeddings
from .baron_kd import BaronKD, BaronRoIHead
from .losses import FeatureQueue, QueuedInfoNCE, info_nce
from .sampling import (GRID_RECTANGLES, BagSamples, NeighbourhoodSampler, normalize_to_spanned, select_proposals,
                       spanned_boxes)

__all__ = [
    'PseudoWordProjector', 'encode_word_sequences', 'special_token_embeddings', 'BaronKD', 'BaronRoIHead',
    'FeatureQueue', 'QueuedInfoNCE', 'info_nce', 'GRID_RECTANGLES', 'BagSamples', 'NeighbourhoodSampler',
    'normalize_to_spanned', 'select_proposals', 'spanned_boxes',
]
