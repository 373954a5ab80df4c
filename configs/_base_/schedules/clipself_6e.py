# CLIPSelf schedule (scripts/train_clipself_*.sh): 8 GPUs x 2 images, AdamW lr 1e-5, betas (0.9, 0.999),
# eps 1e-8, weight decay 0.1 on tensors of ndim >= 2 that are no norm / bias (the reference's non-ViT
# defaults), lr * (step + 1) / 1000 for 1000 steps, then cosine to 0 over the rest; 6 epochs; no grad
# clipping. AMP fp16: tools/train.py CONFIG --amp.
# The cosine needs the run's length in steps: ceil(images / GPUs) // batch = 7393 per epoch for COCO
# train2017 on 8 x 2 (44,358 in all). Other data or GPU counts: set clipself_iters_per_epoch.
max_epochs = 6
clipself_iters_per_epoch = -(-118287 // 8) // 2
warmup_iters = 1000
total_iters = max_epochs * clipself_iters_per_epoch

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    # MMEngine's LinearLR over [0, 1000) gives lr * (1 + 999 * k / 999) / 1000 = lr * (k + 1) / 1000 at step k.
    dict(type='LinearLR', start_factor=1.0 / warmup_iters, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=warmup_iters, end=total_iters,
         T_max=total_iters - warmup_iters),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
# The reference seeds 0 + rank.
randomness = dict(seed=0, diff_rank_seed=True)

custom_hooks = [
    # Only after epoch 6 (the reference's save_frequency): <work_dir>/clip_epoch_6.pt and clip_latest.pt =
    # 0.7 * trained + 0.3 * original weights (alpha 0.7 for B/16); the val loop of every epoch scores the
    # ensembled weights, as the reference evaluates them.
    dict(type='CLIPExportHook', alpha=0.7, interval=max_epochs),
]
