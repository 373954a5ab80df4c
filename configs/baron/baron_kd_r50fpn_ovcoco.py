# BARON-KD R50-FPN on OV-COCO as the reference runs it (wusize/ovdet
# baron_kd_faster_rcnn_r50_fpn_syncbn_90kx2). 34.0 (paper) / 34.6 (code)
# novel AP50. Deliberate deviations: docs/reference_parity.md, section "BARON-KD".
# Weights in ckpt/ (offline): clip_vitb32.pth (state_dict of the OpenAI ViT-B/32) and the SoCo* R50-FPN
# initialisation res50_fpn_soco_star_400.pth. Class embeddings: the reference's "attn12" file of the 80 classes.
_base_ = [
    '../_base_/models/baron_kd_r50fpn.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/schedules/baron_90k.py',
    '../_base_/default_runtime.py',
]

# + the two-source dataset and batch sampler
custom_imports = dict(imports=['clim', 'ovdet', 'ovdet.datasets.baron_kd_sources'], allow_failed_imports=False)

# The reference's label space is the base config's: all 80 COCO classes in id order; the 48 base classes weigh
# 1, the 17 novel and 15 unevaluated ones 0 (-inf logits in training); at test all 80 are predicted and the
# metric scores the 65.
coco_classes = _base_.classes
base_classes = [c for c, w in zip(_base_.classes, _base_.class_weights) if w > 0]
model = dict(roi_head=dict(bbox_head=dict(num_classes=len(coco_classes), class_weights=_base_.class_weights)))

# Both branches: short side from {640, 672, ..., 800}, long side <= 1333, flip 0.5, pad /32 per branch.
train_scales = [(1333, s) for s in range(640, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# det: images with a base box, short side >= 32. KD: every train image, with its base boxes (if any).
det_dataset = dict(
    type=_base_.dataset_type,
    data_root=_base_.data_root,
    ann_file=_base_.train_ann_file,
    data_prefix=dict(img='train2017/'),
    metainfo=dict(classes=coco_classes),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=train_pipeline)
kd_dataset = dict(
    type='BaseAnnotationsCocoDataset',
    keep_classes=base_classes,
    data_root=_base_.data_root,
    ann_file='annotations/instances_train2017.json',
    data_prefix=dict(img='train2017/'),
    metainfo=dict(classes=coco_classes),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=train_pipeline)
train_dataloader = dict(
    _delete_=True,
    batch_size=4,  # 2 det + 2 KD per GPU, x 16 GPUs
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='TwoSourceAspectRatioBatchSampler', per_source=(2, 2)),
    dataset=dict(type='BranchConcatDataset', branches=('det', 'kd'), datasets=[det_dataset, kd_dataset]))
val_dataloader = dict(batch_size=1, dataset=dict(metainfo=dict(classes=coco_classes), pipeline=test_pipeline))
test_dataloader = val_dataloader

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10000, by_epoch=False))
log_processor = dict(by_epoch=False)
