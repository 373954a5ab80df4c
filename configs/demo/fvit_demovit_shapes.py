# Demo, stage 6: F-ViT on base-class boxes of the generated shapes benchmark with the CLIM-refined
# demo CLIP, frozen. Same bases as configs/fvit/fvit_vitb16_ovcoco.py; run by tools/run_demo.py,
# which sets the data paths, the CLIP checkpoint and the class-embedding file.
_base_ = ['../tiny/fvit_tiny_shapes.py', '../_base_/models/demo_clip.py']

image_size = (128, 128)  # the CLIP sees it at 64 px (patch 8): an 8x8 map at nominal stride 16
channels = 64

model = dict(
    backbone=dict(
        clip_cfg=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.demo_clip_cfg}},
                      pretrained='work_dirs/demo/clim/clip_latest.pt'),
        out_indices=(0, 1, 2, 3)),
    neck=[dict(_base_.model.neck[0], in_channels=_base_.demo_clip_width),
          dict(_base_.model.neck[1], in_channels=[_base_.demo_clip_width] * 4, out_channels=channels)],
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings='work_dirs/demo/embed/class_embeddings.npy',
            in_channels=channels,
            # Two fc layers instead of the real config's 4 conv + 2 fc: why in docs/demo.md.
            num_shared_convs=0,
            num_shared_fcs=2,
            conv_out_channels=channels,
            fc_out_channels=256)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)))

# The demo pads with CLIP's mean colour (0 after normalization), not the reference's quirky value.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val={{_base_.zero_pad_val}}),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val={{_base_.zero_pad_val}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs), logger=dict(interval=20))
randomness = dict(seed=0)  # the demo's numbers are reproducible run to run
