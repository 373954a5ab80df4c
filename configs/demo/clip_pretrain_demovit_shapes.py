# Demo, stage 2: contrastive pre-training of the demo CLIP from scratch on the generated shapes'
# captions. Run by tools/run_demo.py, which sets the data paths; standalone:
#   python tools/train.py configs/demo/clip_pretrain_demovit_shapes.py --cfg-options \
#       train_dataloader.dataset.data_root=work_dirs/demo/data/shapes/ \
#       val_dataloader.dataset.data_root=work_dirs/demo/data/shapes/
_base_ = ['../tiny/clip_pretrain_tiny_shapes.py', '../_base_/models/demo_clip.py']

model = dict(
    clip=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.demo_clip_cfg}}, pretrained=None),
    region_eval=dict(crop_size={{_base_.demo_clip_input}}, templates={{_base_.demo_templates}}),
    data_preprocessor=dict(pad_size={{_base_.demo_region_size}}))

train_dataloader = dict(batch_size=64, dataset=dict(pipeline={{_base_.demo_caption_pipeline}}))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline={{_base_.demo_region_pipeline}}))
test_dataloader = val_dataloader

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
