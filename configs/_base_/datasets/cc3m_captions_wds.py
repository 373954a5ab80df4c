# CC3M / CC12M as webdataset tar shards ({key}.jpg + {key}.json / {key}.txt), streamed: no json index,
# fixed-size epochs (num_samples over all ranks). The epoch reaches the shard readers through the
# dataset object, so workers are re-created each epoch (persistent_workers=False) and the config
# using this base adds dict(type='DatasetEpochHook') to custom_hooks.
_base_ = ['./coco_captions.py']

train_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=8,
    persistent_workers=False,
    sampler=None,  # an IterableDataset splits itself over ranks and workers
    drop_last=True,
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='WebCaptionDataset',
        data_root='data/cc3m_wds/',
        shards='cc3m-train-{0000..0331}.tar',
        num_samples=2_800_000,  # set to the number of samples in your shards
        seed=0,
        pipeline={{_base_.caption_train_pipeline}}))
