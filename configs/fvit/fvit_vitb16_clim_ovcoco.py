# F-ViT on the CLIM-refined OpenAI CLIP ViT-B/16 (CLIM paper: 25.7 novel AP50; reference code: 29.7).
# The checkpoint is our CLIM export (or the reference release), see ckpt/README.md. CLIM keeps the
# text tower frozen, so the class embeddings are the same file as the baseline's.
_base_ = ['./fvit_vitb16_ovcoco.py']

model = dict(backbone=dict(clip_cfg=dict(pretrained='ckpt/openai_vitb16_coco_clim.pt')))
