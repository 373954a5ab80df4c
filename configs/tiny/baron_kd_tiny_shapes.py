# Tiny BARON-KD on the synthetic shapes benchmark (tests/baron): the reference config
# (configs/baron/baron_kd_r50fpn_ovcoco.py) with a narrow ResNet-18, plain BN (CPU), the tiny CLIP as teacher
# and text encoder, 2 words per region, small images and queues, no SoCo init, no AMP, so a few CPU
# iterations run in seconds. The KD source is the val split (its novel boxes dropped): images the
# detection source never shows. Paths are relative to the working directory:
#   python -m ovd_demo.shapes --out data/shapes --num-train 8 --num-val 4
#   ckpt/tiny_clip.pt: a CLIPModel checkpoint of `tiny_clip_cfg` (e.g. clim.models.save_clip_checkpoint)
#   data/shapes/shapes_tiny_attn12.npy: "attn12" embeddings of the 10 class names from that CLIP
#   python tools/train.py configs/tiny/baron_kd_tiny_shapes.py --work-dir work_dirs/baron_kd_tiny_shapes
_base_ = [
    '../baron/baron_kd_r50fpn_ovcoco.py',
    '../_base_/models/tiny_clip.py',
]

channels = 32
fc_out = 64
norm_cfg = dict(type='BN', requires_grad=True)
classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'crescent', 'arrow', 'heart')
novel_classes = ('star', 'ring', 'arrow')
class_weights = [0.0 if c in novel_classes else 1.0 for c in classes]
data_root = 'data/shapes/'
image_size = (128, 128)

model = dict(
    backbone=dict(depth=18, base_channels=16, norm_cfg=norm_cfg),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels, norm_cfg=norm_cfg),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings='data/shapes/shapes_tiny_attn12.npy',
            num_classes=len(classes),
            class_weights=class_weights,
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=fc_out,
            words_per_region=2,
            word_dim=64)),
    teacher=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained='ckpt/tiny_clip.pt'),
    # the untrained RPN rarely passes 0.85: GT boxes (score 1) and the argmax fallback carry the bags
    bag_loss=dict(queue_size=16),
    single_loss=dict(queue_size=16),
    boxes_cache=dict(start_calls=3),  # reached within the 4 tiny iterations
    soco_checkpoint=None,
    train_cfg=dict(rpn_proposal=dict(nms_pre=300, max_per_img=100), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(160, 96), (160, 128)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(datasets=[
        dict(type='OVCocoDataset', data_root=data_root, ann_file='annotations/instances_train.json',
             data_prefix=dict(img='images/train/'), metainfo=dict(classes=classes),
             filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline),
        dict(type='BaseAnnotationsCocoDataset', keep_classes=[c for c in classes if c not in novel_classes],
             data_root=data_root, ann_file='annotations/instances_val.json', data_prefix=dict(img='images/val/'),
             metainfo=dict(classes=classes), filter_cfg=dict(filter_empty_gt=False), pipeline=train_pipeline),
    ]))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='annotations/instances_val.json', data_prefix=dict(img='images/val/'),
                 metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

max_iters = 4
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False))
log_processor = dict(by_epoch=False, window_size=1)
