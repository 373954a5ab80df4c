# F-ViT on the CLIM-refined OpenAI CLIP ViT-B/16 (refined on CC3M) for OV-LVIS: CLIM's reference recipe
# mask_rcnn_nasfpn_openai_vitb16_clim_bs64_ov_lvis_4x (mask APr 20.8 paper / 24.3 code). CLIM keeps the
# text tower frozen, so the class embeddings are the baseline's file.
_base_ = ['./fvit_vitb16_ovlvis.py']

model = dict(backbone=dict(clip_cfg=dict(pretrained='ckpt/openai_vitb16_cc3m_clim.pt')))
