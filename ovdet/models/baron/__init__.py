"""BARON-KD as the reference runs it: pseudo-word classifier, detached-objectness RPN, bag sampling,
teacher targets, queued InfoNCE, boxes cache and the two-branch detector."""
from .baron_kd import BaronKD, bag_sequence_ids, group_digit_id, single_region_box_ids
from .bbox_head import BaronBBoxHead
from .boxes_cache import BoxesCache
from .checkpoint import (SOCO_PREFIXES, BaronCheckpointError, SocoCheckpointError, convert_baron_state_dict,
                         detect_baron_layout, load_soco_checkpoint)
from .classifier import PseudoWordClassifier, word_keep_mask
from .data_preprocessor import BranchDataPreprocessor
from .losses import FeatureQueue, QueuedInfoNCE, masked_info_nce
from .positional import BoxPositionalEmbedding, sine_box_code
from .rpn_head import DetachedObjectnessRPNHead
from .sampling import (BagGroup, BagRows, NeighbourhoodSampler, grid_cells, neighbour_probabilities,
                       normalize_to_spanned, select_kd_proposals, spanned_box)
from .text_encoder import (attn12_class_embeddings, attn12_eot, attn12_prompt_embeddings,
                           attn12_vild_class_embeddings, bag_features, pack_word_sequences, special_tokens)

__all__ = [
    'BaronKD', 'single_region_box_ids', 'bag_sequence_ids', 'group_digit_id', 'BaronBBoxHead', 'BoxesCache',
    'SOCO_PREFIXES', 'BaronCheckpointError', 'SocoCheckpointError', 'convert_baron_state_dict', 'detect_baron_layout',
    'load_soco_checkpoint', 'PseudoWordClassifier', 'word_keep_mask', 'BranchDataPreprocessor', 'FeatureQueue',
    'QueuedInfoNCE', 'masked_info_nce', 'BoxPositionalEmbedding', 'sine_box_code', 'DetachedObjectnessRPNHead',
    'BagGroup', 'BagRows', 'NeighbourhoodSampler', 'grid_cells', 'neighbour_probabilities', 'normalize_to_spanned',
    'select_kd_proposals', 'spanned_box', 'attn12_class_embeddings', 'attn12_vild_class_embeddings', 'attn12_eot',
    'bag_features', 'attn12_prompt_embeddings',
    'pack_word_sequences', 'special_tokens',
]
