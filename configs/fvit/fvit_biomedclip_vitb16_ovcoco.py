# F-ViT on a frozen BiomedCLIP (PubMedBERT_256, ViT-B/16): the OpenAI ViT-B/16 baseline recipe with BiomedCLIP.
# BiomedCLIP's image tower is timm vit_base_patch16_224 (width 768, embed 512, patch 16, 12 blocks): the
# backbone reads its blocks 3, 5, 7, 11 (the last as CLIM's v2 block) through clim/models/towers/timm_vit.py, so
# the pyramid, FPN and head are unchanged. Weights by zoo name ('biomedclip': the hub cache
# ckpt/models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 + the BiomedBERT hub entry):
#   python tools/check_ckpt.py --config configs/fvit/fvit_biomedclip_vitb16_ovcoco.py
# The class embeddings must come from BiomedCLIP's own (PubMedBERT) text tower (CLIM keeps
# the text tower frozen, so the same file serves the CLIM-refined model below):
#   python tools/gen_text_embeddings.py --model biomedclip --classes coco_80 --templates vild \
#       --out data/ov_coco/ov_coco_80_biomedclip_vitb16_vild.npy
#   tools/dist_train.sh configs/fvit/fvit_biomedclip_vitb16_ovcoco.py 8
# On a CLIM-refined BiomedCLIP (configs/clim/clim_biomedclip_vitb16_coco.py; the export records its class and
# architecture):
#   --cfg-options model.backbone.clip_cfg.pretrained=work_dirs/clim_biomedclip_vitb16_coco/clip_latest.pt
_base_ = ['./fvit_vitb16_ovcoco.py']

class_embeddings = 'data/ov_coco/ov_coco_80_biomedclip_vitb16_vild.npy'
model = dict(
    backbone=dict(clip_cfg=dict(_delete_=True, type='ZooModel', name='biomedclip')),
    roi_head=dict(bbox_head=dict(class_embeddings=class_embeddings)))
