# F-ViT schedule (reference: 8 GPUs x 8 images = 64): AdamW lr 1e-4, wd 0.1, grad-clip 1.0,
# linear warmup over 250 iterations, 3 epochs.
#   AMP:       tools/train.py CONFIG --amp            (AmpOptimWrapper, dynamic loss scale)
#   other batch sizes: tools/train.py CONFIG --auto-scale-lr  (lr x total_batch / 64)
max_epochs = 3
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # Only parameters with requires_grad reach the optimizer: the frozen CLIP is not in it at all.
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    clip_grad=dict(max_norm=1.0, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
]

auto_scale_lr = dict(enable=False, base_batch_size=64)
