# BARON-KD R50-FPN on OV-COCO with a CLIM-refined CLIP as teacher and text encoder: the reference config
# with only these weights changed (a more region-aware teacher is the point of CLIM). The class-embedding
# file must come from the same CLIP ("attn12", ovdet.models.baron.attn12_class_embeddings).
_base_ = ['./baron_kd_r50fpn_ovcoco.py']

model = dict(
    teacher=dict(model_name='ViT-B-16', pretrained='ckpt/openai_vitb16_coco_clim.pt'),
    roi_head=dict(bbox_head=dict(class_embeddings='data/ov_coco/coco_80_vitb16_clim_attn12.npy')))
