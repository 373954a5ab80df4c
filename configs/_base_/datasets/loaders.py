# What every dataset base's val / test loader shares: one image per step, in order, each image seen once
# by the metric. The dataset bases (coco_captions.py, ov_coco_detection.py, ov_lvis_detection.py) add
# their `dataset`.
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
