# CLIM schedule (reference: COCO captions, 100 epochs, 4 GPUs x 32 images): AdamW lr 1e-5, weight decay
# 0.1 (not on gains, biases, embeddings of dim 1 or logit_scale, as open_clip's trainer), linear warmup
# over 1000 iterations, then cosine to 0. AMP: tools/train.py CONFIG --amp (AmpOptimWrapper).
max_epochs = 100
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'logit_scale': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
# lr is for 4 x 32 = 128 images per step; --auto-scale-lr rescales it linearly.
auto_scale_lr = dict(enable=False, base_batch_size=128)

custom_hooks = [
    # logit_scale in [0, ln 100] after every optimizer step.
    dict(type='LogitScaleClampHook'),
    # <work_dir>/clip_epoch_<n>.pt and clip_latest.pt: 0.7 * trained + 0.3 * original weights,
    # loadable by CLIPModel(pretrained=...); the val loop evaluates these ensembled weights.
    dict(type='CLIPExportHook', alpha=0.7, interval=1),
]
