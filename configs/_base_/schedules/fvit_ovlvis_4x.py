# CLIM's OV-LVIS "4x" schedule: 48 epochs of the repeat-factor-sampled set, validation every 12.
# AdamW lr 4e-4 for batch 128, auto-scaled by MMEngine (enabled, as in the reference): 2e-4 at the
# reference's 4 GPUs x 16 = 64. wd 0.05 on every parameter, grad-clip 35, linear warmup from 0.001 over
# 250 iterations, x0.1 at epochs 32 and 44. The reference trains with AMP: tools/train.py CONFIG --amp.
max_epochs = 48
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',  # the frozen CLIP is not in the optimizer
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[32, 44], gamma=0.1),
]

auto_scale_lr = dict(enable=True, base_batch_size=128)
