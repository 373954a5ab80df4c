# CLIM refinement of OpenAI CLIP ViT-B/16 on CC3M (caption json form): 3 epochs, otherwise the COCO recipe.
#   tools/dist_train.sh configs/clim_cc3m_vitb16.py 4 --amp
# Web-scale shards instead of a json: configs/clim_cc3m_wds_vitb16.py.
_base_ = [
    './_base_/models/clim_vitb16.py',
    './_base_/datasets/cc3m_captions.py',
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
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
