# F-ViT on a frozen EVA-02 CLIP L/14-336 refined by CLIPSelf: CLIPSelf's OV-COCO recipe at 896 px
# (eva_clip.md "EVA F-ViT"), published novel AP50 44.3 with the proposals checkpoint (38.4 with patches).
# As configs/fvit/fvit_eva_vitb16_ovcoco.py with: 896 px images, taps after blocks 6, 10, 14 and 23 (the last
# the v2 block), width 1024, fc_out_channels = embed dim 768.
# The reference's token grid (docs/reference_parity.md row EF1): the backbone runs the 896 input at patch 14 (a
# 64 x 64 grid, token_grid='patch'), so the pyramid strides are 3.5-28 and the anchor strides 3.5-56.
#   python tools/gen_text_embeddings.py --model-name EVA02-L-14-336 --pretrained ckpt/EVA02_CLIP_L_336_psz14_s6B.pt \
#       --classes ov_coco_65 --templates vild --background --out data/ov_coco/ov_coco_65_eva_vitl14_vild_bg.npy
#   tools/dist_train.sh configs/fvit/fvit_eva_vitl14_ovcoco.py 8
_base_ = ['./fvit_eva_vitb16_ovcoco.py']

image_size = (896, 896)
clip_width = 1024
embed_dim = 768
class_embeddings = 'data/ov_coco/ov_coco_65_eva_vitl14_vild_bg.npy'
model = dict(
    backbone=dict(
        clip_cfg=dict(model_name='EVA02-L-14-336', pretrained='ckpt/eva_vitl14_coco_clipself_proposals.pt'),
        out_indices=(6, 10, 14, 23),
        token_grid='patch'),  # the reference's grid: 896 px at patch 14 = 64 x 64 tokens, strides 3.5-28
    rpn_head=dict(anchor_generator=dict(strides=[3.5, 7, 14, 28, 56])),
    neck=[dict(_base_.model.neck[0], in_channels=clip_width),
          dict(_base_.model.neck[1], in_channels=[clip_width] * 4)],
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[3.5, 7, 14, 28]),
                  bbox_head=dict(class_embeddings=class_embeddings, fc_out_channels=embed_dim)))

train_pipeline = [
    dict(t, scale=image_size) if t['type'] == 'RandomResize' else
    dict(t, crop_size=image_size) if t['type'] == 'RandomCrop' else
    dict(t, size=image_size) if t['type'] == 'Pad' else t
    for t in _base_.train_pipeline]
test_pipeline = [
    dict(t, scale=image_size) if t['type'] == 'Resize' else dict(t, size=image_size) if t['type'] == 'Pad' else t
    for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
