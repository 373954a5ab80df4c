# CLIM on OpenAI CLIP ViT-B/16 (reference recipe): mosaics of 2x2, 3x3 and 4x4 tiles resized to 1024,
# region features from the v2 dense map (RoIAlign 1x1 on pseudo boxes), frozen text tower, the last 6
# image-tower groups (blocks 6-11) trainable; ln_post / proj stay frozen.
# OpenAI weights were trained with QuickGELU: said explicitly, and carried into every export.
# The caption pipeline prepares images at the model's input size (224) and tokenizes at its context
# length (77): see configs/_base_/datasets/coco_captions.py.

model = dict(
    type='CLIM',
    clip=dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True, pretrained='ckpt/ViT-B-16.pt'),
    mosaic_choices=[2, 3, 4],
    train_image_size=1024,
    extraction_mode='v2',
    contrast_weight=1.0,
    unlocked_groups=6,
    grad_checkpointing=False,
    # How the val loop (region recognition) scores ground-truth regions.
    region_eval=dict(mode='v2', with_boxes=True, with_masks=True, with_crops=False),
    # CLIP mean/std normalization on the device; eval batches are padded to 1024 x 1024.
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=1024, pad_size_divisor=16),
)

# Distributed runs: 'synced' = DDP averages the gradients (our default). 'reference' = the reference
# trainer's independent replicas (it calls `model.module`, so DDP never all-reduces): each rank trains its
# own copy on its shard, rank 0's is checkpointed and exported (docs/reference_parity.md, "gradient sync").
#   tools/dist_train.sh CONFIG 8 --cfg-options model_wrapper_cfg.sync=reference
model_wrapper_cfg = dict(type='GradSyncDataParallel', sync='synced', broadcast_buffers=False,
                         find_unused_parameters=False)
