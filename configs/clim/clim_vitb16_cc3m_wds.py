# CLIM on CC3M / CC12M streamed from webdataset tar shards (data/README.md): set the shard pattern and
# num_samples for your download, e.g.
#   tools/dist_train.sh configs/clim/clim_vitb16_cc3m_wds.py 8 --amp --cfg-options \
#       train_dataloader.dataset.shards='cc12m-{00000..01242}.tar' \
#       train_dataloader.dataset.num_samples=10000000
_base_ = [
    '../_base_/models/clim_vitb16.py',
    '../_base_/datasets/cc3m_captions_wds.py',
    '../_base_/schedules/clim_cc3m_3e.py',
    '../_base_/default_runtime.py',
]

custom_hooks = [
    dict(type='LogitScaleClampHook'),
    dict(type='CLIPExportHook', alpha=0.7, interval=1),
    dict(type='DatasetEpochHook'),  # shard order / caption choice per epoch
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
