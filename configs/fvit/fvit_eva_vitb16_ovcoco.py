# F-ViT on a frozen EVA-02 CLIP B/16 refined by CLIPSelf: CLIPSelf's OV-COCO recipe
# (F-ViT/configs/ov_coco/fvit_vitb16_upsample_fpn_bs64_3e_ovcoco_eva_original.py; eva_clip.md "EVA F-ViT",
# detectors.md), published novel AP50 37.6 with the CLIPSelf proposals checkpoint (33.6 with patches).
# What differs from the OpenAI F-ViT configs, all as the reference computes it:
#   ImageNet mean/std in the pipeline (the frozen EVA sees inputs ~1.2x CLIP's scale); pads exactly 0 after
#   normalization; no projection in the classifier (the ReLU'd cls fc, fc_out_channels = 512, is the region
#   embedding); background = the fixed text embedding of "background" (last row of the class file); the 65
#   OV-COCO classes as the vocabulary (test on the 65-class split); fp16 loss scale 512; 3 epochs, no decay.
#   python tools/gen_text_embeddings.py --model-name EVA02-B-16 --pretrained ckpt/EVA02_CLIP_B_psz16_s8B.pt \
#       --classes ov_coco_65 --templates vild --background --out data/ov_coco/ov_coco_65_eva_vitb16_vild_bg.npy
#   tools/dist_train.sh configs/fvit/fvit_eva_vitb16_ovcoco.py 8
# Another EVA CLIP as the backbone (the original release, CLIPSelf patches, our CLIPSelf export):
#   --cfg-options model.backbone.clip_cfg.pretrained=ckpt/eva_vitb16_coco_clipself_patches.pt
_base_ = ['./fvit_vitb16_ovcoco.py']

classes = _base_.ov65_classes
class_embeddings = 'data/ov_coco/ov_coco_65_eva_vitb16_vild_bg.npy'
embed_dim = 512
clip_width = 768
# ImageNet mean / std (pixel units, RGB); the images are float32 and BGR in the pipeline, so padding with the
# mean in BGR order normalizes to exactly 0 (the reference pads after normalizing).
imagenet_mean = [123.675, 116.28, 103.53]
imagenet_std = [58.395, 57.12, 57.375]
imagenet_zero_pad_val = dict(img=(103.53, 116.28, 123.675))

model = dict(
    data_preprocessor=dict(mean=imagenet_mean, std=imagenet_std),
    backbone=dict(
        clip_cfg=dict(_delete_=True, type='CLIP', model_name='EVA02-B-16',
                      pretrained='ckpt/eva_vitb16_coco_clipself_proposals.pt'),
        out_indices=(3, 5, 7, 11)),  # the last one computed as the v2 block
    roi_head=dict(
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes=len(classes),
            class_weights=_base_.ov65_class_weights,
            background='text',
            background_row=True,
            projection=False,
            fc_out_channels=embed_dim,
            bg_weight=0.6,
            temperature=50.0,
            ensemble=dict(alpha=0.1, beta=0.8, clip_temperature=75.0))))

image_size = _base_.image_size
train_pipeline = [dict(t, pad_val=imagenet_zero_pad_val) if t['type'] == 'Pad' else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, pad_val=imagenet_zero_pad_val) if t['type'] == 'Pad' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader

# fp16 with a static loss scale of 512 (the reference's fp16 dict).
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.0)
