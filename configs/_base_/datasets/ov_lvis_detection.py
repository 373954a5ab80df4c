# OV-LVIS instance data (boxes + masks): LVIS v1 annotations over the COCO 2017 image folders,
# repeat-factor sampling for training, resize 640 + pad for testing. Files (see data/README.md):
#   train: lvis_v1_train_base.json  <- tools/prepare_ov_lvis.py (rare annotations removed, 1203 categories)
#   val:   lvis_v1_val.json (official, unchanged; all 1203 classes; images from train2017/ and val2017/)
# Image paths come from each image's coco_url (`train2017/...` / `val2017/...`) under `data/coco/`.
_base_ = ['./loaders.py']

dataset_type = 'OVLVISDataset'
data_root = 'data/'
train_ann_file = 'lvis_v1/annotations/lvis_v1_train_base.json'
val_ann_file = 'lvis_v1/annotations/lvis_v1_val.json'
# The category list with rare counts set to 0 (tools/prepare_ov_lvis.py): the detector's class weights.
category_info = data_root + 'lvis_v1/annotations/lvis_v1_train_base_cat_info.json'
img_prefix = 'coco/'
num_classes = 1203
image_size = (640, 640)
backend_args = None

# Reference quirk (detectors.md): the pad value is CLIP's mean in RGB order applied to the BGR image.
pad_val = dict(img=(122.7709383, 116.7460125, 104.09373615), masks=0)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args, to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='Pad', size=image_size, pad_val=pad_val),  # before the flip, as the reference
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args, to_float32=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

# Repeat-factor sampling (mmdet's LVIS recipe): r(c) = max(1, sqrt(1e-3 / f(c))) with f(c) the fraction
# of the filtered train images holding c; each image appears ceil(max_c r(c)) times per epoch.
train_dataloader = dict(
    batch_size=16,  # x 4 GPUs = 64, the reference's "bs64"
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file=train_ann_file,
            data_prefix=dict(img=img_prefix),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args=backend_args)))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img=img_prefix),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# The reference evaluates `segm` only; `bbox` is added for box APr.
val_evaluator = dict(type='OVLVISMetric', ann_file=data_root + val_ann_file, metric=['segm', 'bbox'],
                     max_dets=300)
test_evaluator = val_evaluator
