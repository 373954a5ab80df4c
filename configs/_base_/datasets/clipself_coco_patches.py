# CLIPSelf image-patch mode on COCO train2017 (clipself.md, "grid_distill"): every image of
# instances_train2017.json (annotations unused), one random m x n grid of the 24 choices per image, up to
# 20 shuffled cells; student input 1024 (longer side, padded black), teacher crops = the cells at 224
# (letterboxed). The val loop is CLIM's region recognition on COCO panoptic val2017 (coco_captions.py).
_base_ = ['./coco_captions.py']

data_root = 'data/coco/'
clipself_ann_file = 'annotations/instances_train2017.json'
clipself_img_prefix = 'train2017/'
det_image_size = 1024
clip_input_size = 224

clipself_train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='SampleGridBoxes', max_split=6, max_boxes=20, crop_scale=1.0),
    dict(type='PrepareCLIPSelfInputs', image_size=det_image_size, crop_size=clip_input_size),
    dict(type='PackCLIPSelfInputs'),
]
train_dataloader = dict(
    _delete_=True,
    batch_size=2,  # per GPU; the reference runs 8 GPUs x 2
    num_workers=4,
    persistent_workers=True,
    # Yields (epoch, index): each sample's grid / shuffle is keyed by (seed, epoch, index).
    sampler=dict(type='CaptionEpochSampler', shuffle=True),
    drop_last=True,
    dataset=dict(
        type='CLIPSelfDataset',
        data_root=data_root,
        ann_file=clipself_ann_file,
        img_prefix=clipself_img_prefix,
        with_proposals=False,
        seed=0,
        pipeline=clipself_train_pipeline))
