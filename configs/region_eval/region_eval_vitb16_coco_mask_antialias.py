# The reference region evaluation with the bicubic mask resize antialiased: what the CLIM / CLIPSelf
# code computes under torchvision >= 0.17 (their requirements pin no torchvision; older versions
# resized tensors without antialiasing, configs/region_eval/region_eval_vitb16_coco.py).
#   python tools/test.py configs/region_eval/region_eval_vitb16_coco_mask_antialias.py
_base_ = ['./region_eval_vitb16_coco.py']

region_protocol = 'reference-antialias'
test_dataloader = dict(dataset=dict(
    protocol=region_protocol,
    pipeline=[
        dict(type='LoadRegionAnnotations'),
        dict(type='RegionEvalTransform', protocol=region_protocol, image_size={{_base_.det_image_size}},
             mask_stride={{_base_.dense_stride}}, crop_size={{_base_.region_crop_size}}),
        dict(type='PackRegionInputs', mask_stride={{_base_.dense_stride}}),
    ]))
