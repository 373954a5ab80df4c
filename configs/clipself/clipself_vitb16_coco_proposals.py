# CLIPSelf (region proposals) on OpenAI CLIP ViT-B/16, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_region_proposals_eva_vitb16.sh with OpenAI's tower instead of EVA-02's.
#   tools/dist_train.sh configs/clipself/clipself_vitb16_coco_proposals.py 8 --amp
# Needs ckpt/ViT-B-16.pt and data/coco/: annotations/coco_proposals.json (the reference's proposal file,
# COCO-style images + annotations[bbox]; see data/README.md), train2017/, panoptic val2017 for the val loop.
# Output: work_dirs/clipself_vitb16_coco_proposals/clip_latest.pt (0.7 * trained + 0.3 * original).
_base_ = [
    '../_base_/models/clipself_vitb16.py',
    '../_base_/datasets/clipself_coco_proposals.py',
    '../_base_/schedules/clipself_6e.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
