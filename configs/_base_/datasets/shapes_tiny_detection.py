# The synthetic shapes benchmark as a tiny detection dataset (128 px, base boxes for training, all 10
# classes for testing), shared by the tiny detector configs. Paths are relative to the working directory:
#   python -m ovd_demo.shapes --out data/shapes --num-train 8 --num-val 4
# Detector configs take `num_classes` and `class_weights` from here (as _base_ variables).
_base_ = ['./ov_coco_detection.py']

data_root = 'data/shapes/'
train_ann_file = 'annotations/instances_train.json'
val_ann_file = 'annotations/instances_val.json'
classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
novel_classes = ('star', 'ring', 'arrow')
num_classes = len(classes)
class_weights = [0.0 if c in novel_classes else 1.0 for c in classes]
image_size = (128, 128)

# The reference pipeline's order and quirks (float32 images, pad then flip, its pad value) at 128 px.
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(img='images/train/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img='images/val/'),
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
