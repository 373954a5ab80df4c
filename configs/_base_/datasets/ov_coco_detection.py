# OV-COCO detection data: large-scale jitter at 640 for training, resize 640 + pad for testing.
# Annotation files are derived from COCO 2017 by tools/prepare_ov_coco.py (see data/README.md):
#   train: base-class boxes only, categories = all 65 OV-COCO classes (`--train-categories ov65`),
#          so train and test share one label space: the detector's class i is `classes[i]` in both
#          (a 48-category train file fails at dataset build: its categories lack the novel classes);
#   val:   the boxes of the 65 classes, categories tagged base / novel, all 5000 images.
_base_ = ['./loaders.py']

dataset_type = 'OVCocoDataset'
data_root = 'data/coco/'
train_ann_file = 'annotations/instances_train2017_ovcoco_base.json'
val_ann_file = 'annotations/instances_val2017_ovcoco.json'
image_size = (640, 640)
backend_args = None

# The detector's label space and the embedding file's rows: all 80 COCO classes in COCO id order, as
# CLIM's reference keeps them live at test time (the 15 unevaluated ones compete for the 100 detections
# per image; the metric then reads only the 65 categories of the val json). `ov65_classes` is the
# 65-class vocabulary of CLIPSelf's F-ViT (configs/fvit/*_65cls.py, docs/reference_parity.md).
classes = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
    'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
    'scissors', 'teddy bear', 'hair drier', 'toothbrush')
novel_classes = (
    'airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard', 'skateboard', 'cup',
    'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')
unevaluated_classes = (
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'sports ball', 'baseball bat',
    'baseball glove', 'tennis racket', 'wine glass', 'hot dog', 'potted plant', 'dining table', 'cell phone',
    'teddy bear', 'hair drier')
ov65_classes = tuple(c for c in classes if c not in unevaluated_classes)
# Loss weight per class: only the 48 base classes train; novel and unevaluated logits are masked to
# -inf. At test time weight > 0 means "base" (alpha) for the detector / CLIP ensemble, else beta.
class_weights = [1.0 if c not in novel_classes and c not in unevaluated_classes else 0.0 for c in classes]
ov65_class_weights = [0.0 if c in novel_classes else 1.0 for c in ov65_classes]

# Reference quirks, kept on purpose (docs/reference_parity.md): images are loaded as float32, and the
# pad value is CLIP's mean in RGB order applied to the still-BGR image, so padded pixels normalize to
# about (-0.27, 0, +0.27) instead of 0. `zero_pad_val` (CLIP's mean in BGR order) normalizes to 0.
pad_val = dict(img=(122.7709383, 116.7460125, 104.09373615))
zero_pad_val = dict(img=(104.09373615, 116.7460125, 122.7709383))

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    # Pad, then flip (the reference's order): a flipped image carries its padding on the left.
    dict(type='Pad', size=image_size, pad_val=pad_val),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=backend_args),
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
    batch_sampler=dict(type='AspectRatioBatchSampler'),
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
