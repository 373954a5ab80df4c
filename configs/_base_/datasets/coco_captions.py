# COCO captions (train2017) in CLIM's per-image caption json (tools/prepare_coco_captions.py, see
# data/README.md), and COCO panoptic val2017 ground-truth regions for the region-recognition val loop.
_base_ = ['./loaders.py']

data_root = 'data/coco/'
caption_ann_file = 'annotations/clim_captions_train2017.json'
caption_img_prefix = 'train2017/'
clip_input_size = 224
context_length = 77

# Each image at the model's input size: random resized crop, area scale (0.9, 1.0), bicubic.
# CLIP mean/std normalization happens in the model's data preprocessor (on the device).
caption_train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=clip_input_size, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='TokenizeCaption', context_length=context_length),
    dict(type='PackCaptionInputs'),
]
train_dataloader = dict(
    batch_size=32,  # per GPU; CLIM needs >= 29 (one 2x2 + 3x3 + 4x4 mosaic)
    num_workers=8,
    persistent_workers=True,
    # Yields (epoch, index): the per-epoch caption choice reaches workers (persistent ones included).
    sampler=dict(type='CaptionEpochSampler', shuffle=True),
    # A short last batch could not fill the mosaics (and would unbalance the cross-rank gather).
    drop_last=True,
    dataset=dict(
        type='CaptionDataset',
        data_root=data_root,
        ann_file=caption_ann_file,
        img_prefix=caption_img_prefix,
        seed=0,
        pipeline=caption_train_pipeline))

# Region recognition (COCO panoptic val2017: 80 things + 53 stuff), longer side 1024, masks on the
# stride-16 grid of the dense map.
region_test_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='ResizeLongestSide', size=1024),
    dict(type='PackRegionInputs', mask_stride=16),
]
val_dataloader = dict(
    dataset=dict(
        type='RegionRecognitionDataset',
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        img_prefix='val2017/',
        seg_prefix='annotations/panoptic_val2017/',
        pipeline=region_test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='RegionRecognitionMetric')
test_evaluator = val_evaluator
