# Region recognition under this project's earlier data protocol 'clim-ovd' (named deviation from the
# reference, docs/reference_parity.md): crowd regions dropped, every segment kept (no size filter or
# cap), json category order, crops cut from the resized normalized input and stretched to 224, the
# image padded with 0 after normalization, masks = cells at least half covered, no fp16 rounding.
# Class embeddings: CLIP's 80-prompt ensemble on natural-language class names.
#   python tools/test.py configs/region_eval/region_eval_vitb16_coco_clim_ovd.py
_base_ = ['./region_eval_vitb16_coco.py']

region_protocol = 'clim-ovd'
model = dict(classifier=dict(templates='full', crop_size={{_base_.region_crop_size}}))
test_dataloader = dict(dataset=dict(
    protocol=region_protocol,
    pipeline=[
        dict(type='LoadRegionAnnotations'),
        dict(type='RegionEvalTransform', protocol=region_protocol, image_size={{_base_.det_image_size}},
             mask_stride={{_base_.dense_stride}}),
        dict(type='PackRegionInputs', mask_stride={{_base_.dense_stride}}),
    ]))
