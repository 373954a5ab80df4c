# F-ViT on a frozen EVA-02 CLIP B/16 refined by CLIPSelf on LVIS: CLIPSelf's OV-LVIS recipe (ov_lvis.md
# "CLIPSelf's OV-LVIS", eva_clip.md "EVA F-ViT"), published mask APr 25.3 with the LVIS-trained patches checkpoint.
# The EVA set-up mirrors configs/fvit/fvit_eva_vitb16_ovcoco.py (ImageNet mean/std, pads exactly 0 after
# normalization, no projection in the classifier, background = the text embedding of "background", the last
# row of the class file). What CLIPSelf's OV-LVIS does differently from CLIM's (configs/fvit/fvit_vitb16_ovlvis.py):
# plain FPN (not NAS-FPN), no repeat-factor sampling, LSJ at 1024, alpha 0.1 / beta 0.6 with CLIP temperature 50,
# AdamW 1e-4 (batch 64) wd 0.1, grad clip 1.0, fp16 loss scale 512, 8 x 8 images; 48 epochs (x0.1 at 32, 44),
# the same class-agnostic mask head and test settings (NMS 0.5, score 1e-4, 300 per image).
# Deviation (docs/reference_parity.md, OV-LVIS L9): CLIPSelf's LVIS RPN convs carry SyncBN; mmdet's RPNHead has none.
#   python tools/gen_text_embeddings.py --model-name EVA02-B-16 --pretrained ckpt/EVA02_CLIP_B_psz16_s8B.pt \
#       --classes lvis_v1 --templates vild --background --out data/lvis_v1/lvis_v1_1203_eva_vitb16_vild_bg.npy
#   tools/dist_train.sh configs/fvit/fvit_eva_vitb16_ovlvis.py 8
# Headline metric: ov_lvis/segm_APr.
_base_ = ['./fvit_vitb16_ovlvis.py']

class_embeddings = 'data/lvis_v1/lvis_v1_1203_eva_vitb16_vild_bg.npy'
embed_dim = 512
clip_width = 768
image_size = (1024, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py reverts SyncBN to BN without CUDA
# ImageNet mean / std (pixel units, RGB); BGR float32 images padded with the mean in BGR order normalize to 0.
imagenet_mean = [123.675, 116.28, 103.53]
imagenet_std = [58.395, 57.12, 57.375]
imagenet_zero_pad_val = dict(img=(103.53, 116.28, 123.675), masks=0)

model = dict(
    data_preprocessor=dict(mean=imagenet_mean, std=imagenet_std),
    backbone=dict(
        clip_cfg=dict(_delete_=True, type='CLIP', model_name='EVA02-B-16',
                      pretrained='ckpt/eva_vitb16_lvis_clipself_patches.pt'),
        out_indices=(3, 5, 7, 11)),  # the last one computed as the v2 block
    neck=[dict(type='SimplePyramid', in_channels=clip_width, norm_cfg=norm_cfg),
          dict(type='FPN', in_channels=[clip_width] * 4, out_channels=256, num_outs=5, norm_cfg=norm_cfg)],
    roi_head=dict(
        bbox_head=dict(
            class_embeddings=class_embeddings,
            background='text',
            background_row=True,
            projection=False,
            fc_out_channels=embed_dim,
            bg_weight=0.9,
            temperature=50.0,
            ensemble=dict(alpha=0.1, beta=0.6, clip_temperature=50.0))))


train_pipeline = [
    dict(t, scale=image_size) if t['type'] == 'RandomResize' else
    dict(t, crop_size=image_size) if t['type'] == 'RandomCrop' else
    dict(t, size=image_size, pad_val=imagenet_zero_pad_val) if t['type'] == 'Pad' else t
    for t in _base_.train_pipeline]
test_pipeline = [
    dict(t, scale=image_size) if t['type'] == 'Resize' else
    dict(t, size=image_size, pad_val=imagenet_zero_pad_val) if t['type'] == 'Pad' else t
    for t in _base_.test_pipeline]
# No repeat-factor sampling: the base-only LVIS train set itself (CLIPSelf's lvis_v1_train_seen_1203_cat.json).
train_dataloader = dict(
    batch_size=8,  # x 8 GPUs
    dataset=dict(_base_.train_dataloader.dataset.dataset, _delete_=True, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.0, optimizer=dict(lr=1e-4, weight_decay=0.1),
                     clip_grad=dict(max_norm=1.0))
auto_scale_lr = dict(enable=True, base_batch_size=64)
