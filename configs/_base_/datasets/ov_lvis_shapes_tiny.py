# The synthetic shapes benchmark in LVIS v1 format (frequency tags, neg / not-exhaustive lists, masks;
# images in COCO-style train2017/ and val2017/ folders named by coco_url), 128 px, for the tiny OV-LVIS
# config. Paths are relative to the working directory (tests/lvis/lvis_test_utils.py writes the layout):
#   data/shapes_lvis/annotations/{lvis_train.json, lvis_val.json}
#   python tools/prepare_ov_lvis.py --train data/shapes_lvis/annotations/lvis_train.json \
#       --out-dir data/shapes_lvis/annotations
_base_ = ['./ov_lvis_detection.py']

data_root = 'data/shapes_lvis/'
train_ann_file = 'annotations/lvis_v1_train_base.json'
val_ann_file = 'annotations/lvis_val.json'
category_info = data_root + 'annotations/lvis_v1_train_base_cat_info.json'
img_prefix = 'images/'
num_classes = 10
image_size = (128, 128)

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            ann_file=train_ann_file,
            data_prefix=dict(img=img_prefix),
            filter_cfg=dict(filter_empty_gt=True, min_size=4),
            pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img=img_prefix),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
