# CLIPSelf (image patches) on EVA-02 CLIP B/16, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_image_patches_eva_vitb16.sh (clipself.md, eva_clip.md): student = v2 dense map
# of the 1024 px image (64 x 64), RoIAlign 1x1 over up to 20 grid cells, teacher = a frozen copy's embedding
# of each cell cropped at 224; every one of the 12 blocks trains; export 0.7 * trained + 0.3 * original.
#   tools/dist_train.sh configs/clipself/clipself_eva_vitb16_coco_patches.py 8 --amp
# Needs ckpt/EVA02_CLIP_B_psz16_s8B.pt (ckpt/README.md, zoo entry eva02-clip-b-16) and data/coco/
# (data/README.md): annotations/instances_train2017.json, train2017/, panoptic val2017 for the val loop.
# Output: work_dirs/clipself_eva_vitb16_coco_patches/clip_latest.pt, an EvaCLIPModel export that
# clim.models.build_clip and F-ViT's backbone rebuild (configs/fvit/fvit_eva_vitb16_ovcoco.py).
_base_ = ['./clipself_vitb16_coco_patches.py']

eva_clip_cfg = dict(type='CLIP', model_name='EVA02-B-16', pretrained='ckpt/EVA02_CLIP_B_psz16_s8B.pt')
model = dict(clip=dict(_delete_=True, **eva_clip_cfg), unlocked_groups=12)
