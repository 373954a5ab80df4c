# CLIPSelf (region proposals) on EVA-02 CLIP B/16, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_region_proposals_eva_vitb16.sh (clipself.md "proposals_distill"): the
# reference's coco_proposals.json, up to 20 proposals per image (area 8^2..1024^2), teacher crops of the
# 1.5x boxes at 224; the rest as configs/clipself/clipself_eva_vitb16_coco_patches.py.
#   tools/dist_train.sh configs/clipself/clipself_eva_vitb16_coco_proposals.py 8 --amp
# Needs ckpt/EVA02_CLIP_B_psz16_s8B.pt and data/coco/: annotations/coco_proposals.json (data/README.md),
# train2017/, panoptic val2017 for the val loop.
# Output: work_dirs/clipself_eva_vitb16_coco_proposals/clip_latest.pt (the reference's
# eva_vitb16_coco_clipself_proposals.pt recipe: 37.6 novel AP50 with configs/fvit/fvit_eva_vitb16_ovcoco.py).
_base_ = ['./clipself_vitb16_coco_proposals.py']

eva_clip_cfg = dict(type='CLIP', model_name='EVA02-B-16', pretrained='ckpt/EVA02_CLIP_B_psz16_s8B.pt')
model = dict(clip=dict(_delete_=True, **eva_clip_cfg), unlocked_groups=12)
