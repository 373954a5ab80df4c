# CLIPSelf (image patches) on OpenAI CLIP ViT-B/16, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_image_patches_eva_vitb16.sh with OpenAI's tower instead of EVA-02's.
#   tools/dist_train.sh configs/clipself/clipself_vitb16_coco_patches.py 8 --amp
# Needs ckpt/ViT-B-16.pt (ckpt/README.md) and data/coco/ (data/README.md): annotations/instances_train2017.json,
# train2017/, and for the val loop panoptic val2017 (to train without it: --cfg-options val_dataloader=None
# val_cfg=None val_evaluator=None).
# Output: work_dirs/clipself_vitb16_coco_patches/clip_latest.pt (0.7 * trained + 0.3 * original), loadable by
# CLIPModel(pretrained=...) and as F-ViT's backbone.
_base_ = [
    '../_base_/models/clipself_vitb16.py',
    '../_base_/datasets/clipself_coco_patches.py',
    '../_base_/schedules/clipself_6e.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
