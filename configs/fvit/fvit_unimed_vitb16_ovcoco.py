# F-ViT on a frozen UniMed-CLIP ViT-B/16: the OpenAI ViT-B/16 baseline recipe with UniMed-CLIP weights.
# UniMed-CLIP's image tower is open_clip ViT-B/16 + QuickGELU (width 768, embed 512, patch 16), so the
# pyramid, FPN and head are unchanged. Weights by zoo name ('unimed-clip-vit-b-16': ckpt/unimed_clip_vit_b16.pt
# + the BiomedBERT hub entry, ckpt/README.md):
#   python tools/check_ckpt.py --config configs/fvit/fvit_unimed_vitb16_ovcoco.py
# The class embeddings must come from UniMed-CLIP's own (BiomedBERT) text tower (CLIM keeps
# the text tower frozen, so the same file serves the CLIM-refined model below):
#   python tools/gen_text_embeddings.py --model unimed-clip-vit-b-16 --classes coco_80 --templates vild \
#       --out data/ov_coco/ov_coco_80_unimed_vitb16_vild.npy
#   tools/dist_train.sh configs/fvit/fvit_unimed_vitb16_ovcoco.py 8
# On a CLIM-refined UniMed-CLIP (configs/clim/clim_unimed_vitb16_coco.py; the export records its class):
#   --cfg-options model.backbone.clip_cfg.pretrained=work_dirs/clim_unimed_vitb16_coco/clip_latest.pt
_base_ = ['./fvit_vitb16_ovcoco.py']

class_embeddings = 'data/ov_coco/ov_coco_80_unimed_vitb16_vild.npy'
model = dict(
    backbone=dict(clip_cfg=dict(_delete_=True, type='ZooModel', name='unimed-clip-vit-b-16')),
    roi_head=dict(bbox_head=dict(class_embeddings=class_embeddings)))
