# BARON-KD R50-FPN on OV-COCO with the CLIM-refined OpenAI ViT-B/16 as teacher (a more region-aware
# teacher is the point of CLIM). CLIM keeps the text tower frozen, so the class embeddings and the
# text encoder are the same as the baseline's. Checkpoint: see ckpt/README.md.
_base_ = ['./baron_kd_r50fpn_ovcoco.py']

model = dict(teacher=dict(pretrained='ckpt/openai_vitb16_coco_clim.pt'))
