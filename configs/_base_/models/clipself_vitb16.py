# CLIPSelf on OpenAI CLIP ViT-B/16 (clipself.md, with OpenAI's tower in place of EVA-02's): the student's
# v2 dense map of the full 1024 px image, RoIAlign 1x1 over up to 20 boxes, distilled towards a frozen copy
# of the original CLIP's embedding of each box's 224 px crop; loss 1 - mean cosine.
# Trainable: every transformer block (12 groups of CLIPModel.image_groups); patch embed, class token,
# ln_pre, pos embed, ln_post, proj, the text tower and logit_scale stay frozen.
# OpenAI weights were trained with QuickGELU: said explicitly, and carried into every export.
model = dict(
    type='CLIPSelf',
    clip=dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True, pretrained='ckpt/ViT-B-16.pt'),
    unlocked_groups=12,
    cosine_weight=1.0,
    dense_mode='v2',
    grad_checkpointing=False,
    # How the val loop (region recognition) scores ground-truth regions, as CLIM's.
    region_eval=dict(mode='v2', with_boxes=True, with_masks=True, with_crops=False),
    # CLIP mean/std of the full images (already padded black to 1024 in the pipeline) and of the crops.
    data_preprocessor=dict(type='CLIPSelfDataPreprocessor', pad_size=1024, pad_size_divisor=16),
)

# Distributed runs: 'synced' = DDP averages the gradients (our default). 'reference' = the reference
# trainer's independent replicas (it calls `model.module`, so DDP never all-reduces): each rank trains its
# own copy on its shard, rank 0's is checkpointed and exported (docs/reference_parity.md, "gradient sync").
#   tools/dist_train.sh CONFIG 8 --cfg-options model_wrapper_cfg.sync=reference
model_wrapper_cfg = dict(type='GradSyncDataParallel', sync='synced', broadcast_buffers=False,
                         find_unused_parameters=False)
