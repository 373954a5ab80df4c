# The reference region evaluation (configs/region_eval/region_eval_vitb16_coco.py: protocol 'reference', ViLD
# prompts, letterboxed crops, bicubic masks) with a tiny CLIP at 128 px on a small COCO-panoptic-format
# split (tests generate one; give its root with test_dataloader.dataset.data_root=...):
#   python tools/test.py configs/tiny/region_eval_tiny_shapes.py \
#       --cfg-options test_dataloader.dataset.data_root=data/tiny_panoptic/ model.clip.pretrained=CLIP.pt
_base_ = ['../region_eval/region_eval_vitb16_coco.py', '../_base_/models/tiny_clip.py']

det_image_size = 128
region_crop_size = 64
model = dict(
    clip=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    data_preprocessor=dict(pad_size=det_image_size))
test_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root='data/tiny_panoptic/',
        pipeline=[
            dict(type='LoadRegionAnnotations'),
            dict(type='RegionEvalTransform', protocol={{_base_.region_protocol}}, image_size=det_image_size,
                 mask_stride={{_base_.dense_stride}}, crop_size=region_crop_size),
            dict(type='PackRegionInputs', mask_stride={{_base_.dense_stride}}),
        ]))
