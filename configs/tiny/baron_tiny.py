# Tiny BARON-KD on the synthetic shapes benchmark (tests/baron): the real R50-FPN config with a narrow
# ResNet-18 (random init, no pretrained file), the tiny CLIP as teacher, small images and narrow heads,
# so a few CPU iterations run in seconds. Paths are relative to the working directory:
#   python -m ovdet.datasets.synthetic --out data/shapes --num-train 8 --num-val 4
#   ckpt/tiny_clip.pt: a CLIPModel checkpoint of `tiny_clip_cfg` (e.g. clim.models.save_clip_checkpoint)
#   data/shapes/shapes_tiny.npy: the 10 class names' embeddings from that CLIP (tools/gen_text_embeddings.py)
#   python tools/train.py configs/tiny/baron_tiny.py --work-dir work_dirs/baron_tiny
_base_ = ['../baron/baron_kd_r50fpn_ovcoco.py']

# Mirrors tests/conftest.py TINY_CLIP_CFG.
tiny_clip_cfg = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, layers=3, width=64, head_width=32, patch_size=16, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2))
channels = 32
fc_out = 64

data_root = 'data/shapes/'
train_ann_file = 'annotations/instances_train.json'
val_ann_file = 'annotations/instances_val.json'
class_embeddings = 'data/shapes/shapes_tiny.npy'
classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
novel_classes = ('star', 'ring', 'arrow')
class_weights = [0.0 if c in novel_classes else 1.0 for c in classes]
image_size = (128, 128)

model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes=len(classes),
            class_weights=class_weights,
            in_channels=channels,
            fc_out_channels=fc_out)),
    teacher=dict(_delete_=True, type='CLIPModel', model_cfg=tiny_clip_cfg, pretrained='ckpt/tiny_clip.pt'),
    # the untrained RPN rarely reaches 0.85 objectness: the GT boxes carry the bags; at most 4 per image
    proposal_cfg=dict(max_per_img=4),
    # 2 words per region keep a 9-box bag (18 words + SOT/EOT) inside the tiny context of 32
    word_cfg=dict(in_features=fc_out, words_per_region=2),
    bag_loss=dict(queue_size=16),
    single_loss=dict(queue_size=16),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(score_thr=0.01)))

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

max_iters = 4
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=1)
