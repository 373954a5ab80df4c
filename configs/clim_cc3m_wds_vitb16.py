# CLIM on CC3M / CC12M streamed from webdataset tar shards (data/README.md): set the shard pattern and
# num_samples for your download, e.g.
#   tools/dist_train.sh configs/clim_cc3m_wds_vitb16.py 8 --amp --cfg-options \
#       train_dataloader.dataset.shards='cc12m-{00000..01242}.tar' \
#       train_dataloader.dataset.num_samples=10000000
_base_ = [
    './_base_/models/clim_vitb16.py',
    './_base_/datasets/cc3m_captions_wds.py',
    './_base_/schedules/clim_schedule.py',
    './_base_/default_runtime.py',
]

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
custom_hooks = [
    dict(type='LogitScaleClampHook'),
    dict(type='CLIPExportHook', alpha=0.7, interval=1),
    dict(type='DatasetEpochHook'),  # shard order / caption choice per epoch
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
