# Plain CLIP contrastive pre-training of the tiny CLIP from scratch on the shapes captions (both towers
# train): the first stage of the demo (ovd_demo), before CLIM refinement (configs/tiny/clim_tiny_shapes.py).
#   python -m ovd_demo.shapes --out data/shapes --num-train 2000 --num-val 200
#   python tools/train.py configs/tiny/clip_pretrain_tiny_shapes.py --work-dir work_dirs/clip_pretrain_tiny_shapes
# Exports work_dirs/clip_pretrain_tiny_shapes/clip_latest.pt (no ensembling: alpha=1).
_base_ = ['./clim_tiny_shapes.py']

model = dict(
    _delete_=True,
    type='CLIPContrastive',
    clip=dict(type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    region_eval=dict(with_crops=True, crop_size=64, templates='short'),
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=128, pad_size_divisor=16))

train_dataloader = dict(batch_size=64)
max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
custom_hooks = [
    dict(type='LogitScaleClampHook'),
    dict(type='CLIPExportHook', alpha=1.0, interval=1),
]
default_hooks = dict(logger=dict(interval=10))
