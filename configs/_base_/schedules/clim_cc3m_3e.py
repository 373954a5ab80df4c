# CLIM on CC3M-scale caption data: the COCO schedule (clim_schedule.py) over 3 epochs, evaluated every
# epoch.
_base_ = ['./clim_schedule.py']

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
