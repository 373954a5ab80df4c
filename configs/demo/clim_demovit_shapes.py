# Demo, stage 3: CLIM refinement of the pre-trained demo CLIP (same code path as
# configs/clim/clim_vitb16_coco.py, small numbers). Also the region-recognition evaluation of any demo
# CLIP checkpoint: tools/test.py configs/demo/clim_demovit_shapes.py --cfg-options model.clip.pretrained=CKPT
_base_ = ['../tiny/clim_tiny_shapes.py', '../_base_/models/demo_clip.py']

model = dict(
    clip=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.demo_clip_cfg}},
              pretrained='work_dirs/demo/pretrain/clip_latest.pt'),
    train_image_size={{_base_.demo_region_size}},
    unlocked_groups=3,  # the last 3 of [stem, pos-embed, block 0..3]
    region_eval=dict(crop_size={{_base_.demo_clip_input}}, templates={{_base_.demo_templates}}),
    data_preprocessor=dict(pad_size={{_base_.demo_region_size}}))

train_dataloader = dict(batch_size=58, dataset=dict(pipeline={{_base_.demo_caption_pipeline}}))  # 2 mosaic groups
val_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.demo_region_pipeline}}))
test_dataloader = val_dataloader

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=10 ** 6)
# Why 5e-4 for 6 epochs: docs/demo.md.
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
