# Tiny CLIPSelf (image patches) on the synthetic shapes benchmark: the real-scale bases with a tiny CLIP
# (tests/helpers.py TINY_CLIP_CFG), 64 px crops, student input 128 (an 8 x 8 dense map), a few CPU
# iterations. Deterministic (seed 0).
#   python -m ovd_demo.shapes --out data/shapes --num-train 12 --num-val 8
#   python tools/train.py configs/tiny/clipself_tiny_shapes_patches.py --work-dir work_dirs/clipself_tiny_shapes_patches
# Region-proposal mode on the same data: configs/tiny/clipself_tiny_shapes_proposals.py.
_base_ = [
    '../_base_/models/clipself_vitb16.py',
    '../_base_/models/tiny_clip.py',
    '../_base_/datasets/clipself_coco_patches.py',
    '../_base_/schedules/clipself_6e.py',
    '../_base_/default_runtime.py',
]

clip_input_size = 64
det_image_size = 128
data_root = 'data/shapes/'

model = dict(
    clip=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    unlocked_groups=3,  # every block of the 3-block tiny ViT, as 12 for B/16
    region_eval=dict(with_crops=True, crop_size=clip_input_size, templates='short'),
    data_preprocessor=dict(pad_size=det_image_size))

train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='SampleGridBoxes', max_split=6, max_boxes=20, crop_scale=1.0),
    dict(type='PrepareCLIPSelfInputs', image_size=det_image_size, crop_size=clip_input_size),
    dict(type='PackCLIPSelfInputs'),
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_train_all.json',
        img_prefix='images/train/',
        pipeline=train_pipeline))

region_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='ResizeLongestSide', size=det_image_size),
    dict(type='PackRegionInputs', mask_stride=16),
]
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='RegionRecognitionDataset',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        img_prefix='images/val/',
        pipeline=region_pipeline))
test_dataloader = val_dataloader

# 12 images / batch 2 = 6 steps per epoch: warmup 2 steps, cosine over the other 10.
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=2, end=12, T_max=10),
]
custom_hooks = [dict(type='CLIPExportHook', alpha=0.7, interval=1)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
