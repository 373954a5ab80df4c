# CLIM refinement of OpenAI CLIP ViT-B/16 on COCO captions: the reference recipe.
#   4 GPUs x 32 images, AdamW 1e-5, 1000 warmup iterations + cosine, 100 epochs, AMP:
#   tools/dist_train.sh configs/clim/clim_vitb16_coco.py 4 --amp
# Needs ckpt/ViT-B-16.pt (ckpt/README.md) and data/coco/ (data/README.md): captions json, train2017/,
# and for the val loop panoptic val2017 (to train without it: --cfg-options val_dataloader=None
# val_cfg=None val_evaluator=None).
# Output: work_dirs/clim_vitb16_coco/clip_latest.pt (0.7 * trained + 0.3 * original), the refined
# backbone F-ViT loads (copy it to ckpt/openai_vitb16_coco_clim.pt).
_base_ = [
    '../_base_/models/clim_vitb16.py',
    '../_base_/datasets/coco_captions.py',
    '../_base_/schedules/clim_schedule.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
