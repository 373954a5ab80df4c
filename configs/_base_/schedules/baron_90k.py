# Schedule: SGD, 90k iterations at batch 16 (2 x 8 GPUs), steps at 60k / 80k, linear warmup 500.
# (Standard mmdet Faster R-CNN settings; not checked against the BARON release.)
max_iters = 90000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    # The frozen teacher CLIP never reaches the optimizer.
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[60000, 80000], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
