# Runtime settings every clim-ovd config inherits.
# `custom_imports` registers our modules, so `tools/train.py CONFIG` works from any directory.
default_scope = 'mmdet'
custom_imports = dict(imports=['clim', 'ovdet'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'),
    # Generator states in every checkpoint, restored on --resume (clim/engine/rng_state.py).
    rng_state=dict(type='RandomStateHook'),
    # Logs the gradient-sync mode; per-rank replicas for model_wrapper_cfg.sync='reference' (clim/engine/grad_sync.py).
    replicas=dict(type='ReplicaCheckpointHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no CUDA.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
