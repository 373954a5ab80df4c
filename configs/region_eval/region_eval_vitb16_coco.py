# Region recognition as the CLIM reference measures it (scripts/test_openai_vitb16_macc_boxes_masks.sh:
# COCO panoptic val2017, 133 classes; boxes, masks and crops; top-1 / top-5 mAcc, things and stuff).
#   baseline:  python tools/test.py configs/region_eval/region_eval_vitb16_coco.py
#   refined:   python tools/test.py configs/region_eval/region_eval_vitb16_coco.py \
#                  --cfg-options model.clip.pretrained=work_dirs/clim_vitb16_coco/clip_latest.pt
# (a CLIM export carries its architecture; OpenAI files are QuickGELU).
# Data protocol 'reference' (clim/datasets/region_protocol.py; every difference from our earlier
# 'clim-ovd' protocol is a row of docs/reference_parity.md): crowd kept, first 100 segments, boxes of
# at least 8^2 px^2, stuff boxes = mask extent; crops of the original image (things 1.5x) letterboxed
# to 224; image padded black to 1024 before normalization; masks bicubic to 64x64, cells > 0
# (antialias off: configs/region_eval/region_eval_vitb16_coco_mask_antialias.py has it on); classes sorted by id,
# embedded with the 63 ViLD prompts on the raw category names (= tools/gen_text_embeddings.py
# --classes coco_panoptic_133 --templates vild); per-class accuracies rounded to fp16.
_base_ = [
    '../_base_/datasets/coco_captions.py',
    '../_base_/default_runtime.py',
]

region_protocol = 'reference'
det_image_size = 1024
region_crop_size = 224
dense_stride = 16

model = dict(
    type='RegionRecognition',
    clip=dict(type='CLIPModel', model_name='ViT-B-16', pretrained='ckpt/ViT-B-16.pt'),
    # The reference scores against a precomputed file of the same recipe: give it with
    # `--cfg-options model.classifier.class_embeddings=FILE.npy`.
    classifier=dict(mode='v2', with_boxes=True, with_masks=True, with_crops=True, templates='vild'),
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=det_image_size, pad_size_divisor=dense_stride))

region_test_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='RegionEvalTransform', protocol=region_protocol, image_size=det_image_size,
         mask_stride=dense_stride, crop_size=region_crop_size),
    dict(type='PackRegionInputs', mask_stride=dense_stride),
]
test_dataloader = dict(dataset=dict(protocol=region_protocol, pipeline=region_test_pipeline))
test_evaluator = dict(type='RegionRecognitionMetric')  # scores under the dataset's protocol, named in its keys
# Only the test loop is used.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
