# Region recognition (zero-shot classification of COCO panoptic val2017 ground-truth regions: boxes,
# masks and crops; top-1 / top-5 mAcc, things and stuff apart) of a CLIP checkpoint.
#   baseline:  python tools/test.py configs/clim_region_eval_vitb16.py
#   refined:   python tools/test.py configs/clim_region_eval_vitb16.py \
#                  --cfg-options model.clip.pretrained=work_dirs/clim_coco_vitb16/clip_latest.pt
# (a CLIM export carries its architecture; OpenAI files are QuickGELU).
_base_ = [
    './_base_/datasets/coco_captions.py',
    './_base_/default_runtime.py',
]

model = dict(
    type='RegionRecognition',
    clip=dict(type='CLIPModel', model_name='ViT-B-16', pretrained='ckpt/ViT-B-16.pt'),
    classifier=dict(mode='v2', with_boxes=True, with_masks=True, with_crops=True, crop_size=224),
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=1024, pad_size_divisor=16))
# Only the test loop is used.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
