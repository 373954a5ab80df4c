# Tiny CLIM on the synthetic shapes benchmark: the real-scale bases with a tiny CLIP (tests/conftest.py
# TINY_CLIP_CFG), 64 px images, mosaics resized to 128, a few CPU iterations. Deterministic (seed 0).
#   python -m ovd_demo.shapes --out data/shapes --num-train 64 --num-val 8
#   python tools/train.py configs/tiny/clim_tiny_shapes.py --work-dir work_dirs/clim_tiny_shapes
# From a pre-trained tiny CLIP (configs/tiny/clip_pretrain_tiny_shapes.py):
#   --cfg-options model.clip.pretrained=work_dirs/clip_pretrain_tiny_shapes/clip_latest.pt
_base_ = [
    '../_base_/models/clim_vitb16.py',
    '../_base_/models/tiny_clip.py',
    '../_base_/datasets/coco_captions.py',
    '../_base_/schedules/clim_schedule.py',
    '../_base_/default_runtime.py',
]

clip_input_size = 64
context_length = 32
data_root = 'data/shapes/'

model = dict(
    clip=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    train_image_size=128,
    unlocked_groups=2,  # the last two of [stem, pos-embed, block 0, block 1, block 2]
    region_eval=dict(with_crops=True, crop_size=clip_input_size, templates='short'),
    data_preprocessor=dict(pad_size=128))

train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=clip_input_size, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='TokenizeCaption', context_length=context_length),
    dict(type='PackCaptionInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/captions_train.json',
        img_prefix='images/train/',
        pipeline=train_pipeline))

region_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='ResizeLongestSide', size=128),
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

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0, deterministic=True)
