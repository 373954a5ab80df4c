# F-ViT on a frozen MetaCLIP ViT-B/16 (400M): the OpenAI ViT-B/16 baseline recipe with MetaCLIP weights.
# MetaCLIP = open_clip "ViT-B-16-quickgelu" (width 768, embed 512, patch 16), so the pyramid, FPN and head
# are unchanged; the class embeddings must come from MetaCLIP's own text tower:
#   python tools/gen_text_embeddings.py --model-name ViT-B-16 --quick-gelu true \
#       --pretrained ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m \
#       --classes coco_80 --templates vild --out data/ov_coco/ov_coco_80_metaclip_vitb16_vild.npy
#   python tools/check_ckpt.py --config configs/fvit/fvit_metaclip_vitb16_ovcoco.py
#   tools/dist_train.sh configs/fvit/fvit_metaclip_vitb16_ovcoco.py 8
# On a CLIM-refined MetaCLIP (configs/clim/clim_metaclip_vitb16_coco.py):
#   --cfg-options model.backbone.clip_cfg.pretrained=work_dirs/clim_metaclip_vitb16_coco/clip_latest.pt
_base_ = ['./fvit_vitb16_ovcoco.py']

class_embeddings = 'data/ov_coco/ov_coco_80_metaclip_vitb16_vild.npy'
model = dict(
    backbone=dict(
        clip_cfg=dict(model_name='ViT-B-16', quick_gelu=True,
                      pretrained='ckpt/models--timm--vit_base_patch16_clip_224.metaclip_400m')),
    roi_head=dict(bbox_head=dict(class_embeddings=class_embeddings)))
