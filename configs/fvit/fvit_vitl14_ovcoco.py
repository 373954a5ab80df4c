# F-ViT on a frozen OpenAI CLIP ViT-L/14 (24 blocks, width 1024, embed 768).
# Patch 14: the backbone resizes the 640 input to 560 so the 40x40 patch grid is the stride-16 grid
# of the 640 input (all levels and the CLIP dense map keep their nominal strides).
_base_ = ['./fvit_vitb16_ovcoco.py']

clip_width = 1024
model = dict(
    backbone=dict(
        clip_cfg=dict(model_name='ViT-L-14', quick_gelu=True, pretrained='ckpt/ViT-L-14.pt'),
        # The ViT-B/16 choice (3, 5, 7, 11) of 12 blocks, scaled to 24 blocks.
        out_indices=(7, 11, 15, 23)),
    neck=[dict(_base_.model.neck[0], in_channels=clip_width), dict(_base_.model.neck[1], in_channels=[clip_width] * 4)],
    roi_head=dict(bbox_head=dict(class_embeddings='data/ov_coco/ov_coco_80_vitl14_vild.npy')))
