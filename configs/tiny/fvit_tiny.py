# Tiny F-ViT on the synthetic shapes benchmark: the real-scale bases with a tiny CLIP, small images and
# narrow heads, so a few CPU iterations run in seconds (tests/fvit). Paths are relative to the working
# directory:
#   python -m ovdet.datasets.synthetic --out data/shapes --num-train 8 --num-val 4
#   ckpt/tiny_clip.pt: a CLIPModel checkpoint of `tiny_clip_cfg` (e.g. clim.models.save_clip_checkpoint)
#   data/shapes/shapes_tiny.npy: the 10 class names' embeddings from that CLIP (tools/gen_text_embeddings.py)
#   python tools/train.py configs/tiny/fvit_tiny.py --work-dir work_dirs/fvit_tiny
# The train json must list all 10 categories (base boxes only), so train and val share one label space.
_base_ = [
    '../_base_/models/fvit_vitb16.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/schedules/fvit_3e.py',
    '../_base_/default_runtime.py',
]

# Mirrors tests/conftest.py TINY_CLIP_CFG (a test checks they agree).
tiny_clip_cfg = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, layers=3, width=64, head_width=32, patch_size=16, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2))
clip_width = 64
channels = 32
norm_cfg = dict(type='BN', requires_grad=True)

data_root = 'data/shapes/'
train_ann_file = 'annotations/instances_train.json'
val_ann_file = 'annotations/instances_val.json'
class_embeddings = 'data/shapes/shapes_tiny.npy'
classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
novel_classes = ('star', 'ring', 'arrow')
class_weights = [0.0 if c in novel_classes else 1.0 for c in classes]
image_size = (128, 128)

model = dict(
    backbone=dict(
        clip_cfg=dict(
            _delete_=True, type='CLIPModel', model_cfg=tiny_clip_cfg, pretrained='ckpt/tiny_clip.pt'),
        out_indices=(0, 1, 1, 2),
        norm_cfg=norm_cfg),
    neck=dict(in_channels=[clip_width] * 4, out_channels=channels, norm_cfg=norm_cfg),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes=len(classes),
            class_weights=class_weights,
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=64,
            norm_cfg=norm_cfg)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=_base_.pad_val),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(img='images/train/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img='images/val/'),
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
