# OV-COCO detection data: large-scale jitter at 640 for training, resize 640 + pad for testing.
# Annotation files are derived from COCO 2017 by tools/prepare_ov_coco.py (see data/README.md):
#   train: base-class boxes only, categories = all 65 OV-COCO classes (`--train-categories ov65`),
#          so train and test share one label space: the detector's class i is `classes[i]` in both
#          (a 48-category train file fails at dataset build: its categories lack the novel classes);
#   val:   the boxes of the 65 classes, categories tagged base / novel, all 5000 images.
dataset_type = 'OVCocoDataset'
data_root = 'data/coco/'
train_ann_file = 'annotations/instances_train2017_ovcoco_base.json'
val_ann_file = 'annotations/instances_val2017_ovcoco.json'
image_size = (640, 640)
backend_args = None

# The 65 evaluated classes in COCO id order: the detector's label space and the embedding file's rows.
classes = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'bench', 'bird',
    'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'kite', 'skateboard', 'surfboard', 'bottle',
    'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'pizza', 'donut', 'cake', 'chair', 'couch', 'bed', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'toothbrush')
novel_classes = (
    'airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard', 'skateboard', 'cup',
    'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')
# Loss weight per class: novel classes never train (their logits are masked to -inf); at test time
# weight > 0 means "base" for the detector / CLIP ensemble.
class_weights = [0.0 if c in novel_classes else 1.0 for c in classes]

# Padding (after the jitter / resize) is filled with CLIP's mean colour (BGR order, images are
# loaded as BGR), i.e. ~0 after normalization, the same as the batch padding of the preprocessor.
pad_val = dict(img=(104, 117, 123))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=8,  # x 8 GPUs = 64, the reference batch (auto_scale_lr.base_batch_size)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img='val2017/'),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='OVCocoMetric', ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
