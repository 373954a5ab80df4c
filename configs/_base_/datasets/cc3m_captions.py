# CC3M in CLIM's caption json form ({"images": [{"id", "file_name", "captions": [...]}]}), images under
# data/cc3m/ (see data/README.md). Same pipeline and sampler as COCO captions; region-recognition val on
# COCO panoptic val2017 as well.
_base_ = ['./coco_captions.py']

cc3m_root = 'data/cc3m/'
train_dataloader = dict(
    dataset=dict(
        data_root=cc3m_root,
        ann_file='annotations/cc3m_train.json',
        img_prefix=''))
