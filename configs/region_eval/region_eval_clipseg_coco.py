# Region recognition with CLIPSeg (transformers, CIDAS/clipseg-rd64-refined) as a text-prompted dense
# baseline: per image one mask-logit map per class name, each ground-truth box / mask scored by the mean
# logit inside it, argmax = prediction. Same data (COCO panoptic val2017 regions) and metric (top-1 / top-5
# mAcc, things and stuff apart) as configs/region_eval/region_eval_vitb16_coco.py, so the numbers sit side by side.
#   python tools/check_ckpt.py --config configs/region_eval/region_eval_clipseg_coco.py   # weights present?
#   python tools/test.py configs/region_eval/region_eval_clipseg_coco.py
#   (max instead of mean: --cfg-options model.reduce=max)
_base_ = [
    '../_base_/datasets/coco_captions.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='CLIPSegRegionRecognition',
    clipseg=dict(type='ZooModel', name='clipseg-rd64-refined'),
    prompt='{}',
    reduce='mean',
    with_boxes=True,
    with_masks=True,
    map_stride=4,
    mask_stride=16,  # the region pipeline's PackRegionInputs mask_stride
    # Images as for the CLIP evaluation; CLIPSeg's own resize (352) and statistics are applied in the model.
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=1024, pad_size_divisor=16))
# Only the test loop is used.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
