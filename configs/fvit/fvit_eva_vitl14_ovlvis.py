# F-ViT on a frozen EVA-02 CLIP L/14-336 refined by CLIPSelf on LVIS: CLIPSelf's OV-LVIS recipe at 896 px
# (ov_lvis.md "CLIPSelf's OV-LVIS", eva_clip.md "EVA F-ViT"), published mask APr 34.9 with the LVIS-trained
# patches checkpoint. As configs/fvit/fvit_eva_vitb16_ovlvis.py with: 896 px images, taps after blocks 6, 10, 14
# and 23 (the last the v2 block), width 1024, fc_out_channels = embed dim 768, beta 0.4.
# The reference's token grid (docs/reference_parity.md rows EF1 / L11): the 896 input runs at patch 14 (a 64 x 64
# grid), pyramid strides 3.5-28, anchor strides 3.5-56, as configs/fvit/fvit_eva_vitl14_ovcoco.py.
#   python tools/gen_text_embeddings.py --model-name EVA02-L-14-336 --pretrained ckpt/EVA02_CLIP_L_336_psz14_s6B.pt \
#       --classes lvis_v1 --templates vild --background --out data/lvis_v1/lvis_v1_1203_eva_vitl14_vild_bg.npy
#   tools/dist_train.sh configs/fvit/fvit_eva_vitl14_ovlvis.py 8
_base_ = ['./fvit_eva_vitb16_ovlvis.py']

image_size = (896, 896)
clip_width = 1024
embed_dim = 768
class_embeddings = 'data/lvis_v1/lvis_v1_1203_eva_vitl14_vild_bg.npy'
model = dict(
    backbone=dict(
        clip_cfg=dict(model_name='EVA02-L-14-336', pretrained='ckpt/eva_vitl14_lvis_clipself_patches.pt'),
        out_indices=(6, 10, 14, 23),
        token_grid='patch'),  # the reference's grid: 896 px at patch 14 = 64 x 64 tokens, strides 3.5-28
    rpn_head=dict(anchor_generator=dict(strides=[3.5, 7, 14, 28, 56])),
    neck=[dict(_base_.model.neck[0], in_channels=clip_width),
          dict(_base_.model.neck[1], in_channels=[clip_width] * 4)],
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[3.5, 7, 14, 28]),
                  mask_roi_extractor=dict(featmap_strides=[3.5, 7, 14, 28]),
                  bbox_head=dict(class_embeddings=class_embeddings, fc_out_channels=embed_dim,
                                 ensemble=dict(beta=0.4))))

# The base's 1024 sizes -> 896 (the key each resizing / cropping / padding step takes its size under).
size_keys = dict(RandomResize='scale', Resize='scale', RandomCrop='crop_size', Pad='size')
train_pipeline = [dict(t, **{size_keys[t['type']]: image_size}) if t['type'] in size_keys else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **{size_keys[t['type']]: image_size}) if t['type'] in size_keys else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
