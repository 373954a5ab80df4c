# CLIM refinement of MetaCLIP ViT-B/16 (400M) on COCO captions: the reference recipe of
# configs/clim/clim_vitb16_coco.py with MetaCLIP weights instead of OpenAI's.
# MetaCLIP is a standard open_clip CLIP ("ViT-B-16-quickgelu", pretrained tag metaclip_400m): the same
# architecture and QuickGELU activation as OpenAI's ViT-B/16, so dense / region features are unchanged.
# Weights: the open_clip hub cache entry ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m
# (ckpt/README.md; check with: python tools/check_ckpt.py --config configs/clim/clim_metaclip_vitb16_coco.py).
#   tools/dist_train.sh configs/clim/clim_metaclip_vitb16_coco.py 4 --amp
# Output: work_dirs/clim_metaclip_vitb16_coco/clip_latest.pt (copy it to ckpt/metaclip_vitb16_coco_clim.pt
# for configs/fvit/fvit_metaclip_vitb16_ovcoco.py --cfg-options model.backbone.clip_cfg.pretrained=...).
_base_ = ['./clim_vitb16_coco.py']

model = dict(
    clip=dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True,
              pretrained='ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m'))
