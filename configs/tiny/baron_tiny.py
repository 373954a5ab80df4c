# Tiny BARON-KD on the synthetic shapes benchmark (tests/baron): the real R50-FPN config with a narrow
# ResNet-18 (random init, no pretrained file), the tiny CLIP as teacher, small images and narrow heads,
# so a few CPU iterations run in seconds. Paths are relative to the working directory:
#   python -m ovdet.datasets.synthetic --out data/shapes --num-train 8 --num-val 4
#   ckpt/tiny_clip.pt: a CLIPModel checkpoint of `tiny_clip_cfg` (e.g. clim.models.save_clip_checkpoint)
#   data/shapes/shapes_tiny.npy: the 10 class names' embeddings from that CLIP (tools/gen_text_embeddings.py)
#   python tools/train.py configs/tiny/baron_tiny.py --work-dir work_dirs/baron_tiny
_base_ = [
    '../_base_/models/baron_kd_r50fpn.py',
    '../_base_/models/tiny_clip.py',
    '../_base_/datasets/shapes_tiny_detection.py',
    '../_base_/schedules/baron_90k.py',
    '../_base_/default_runtime.py',
]

channels = 32
fc_out = 64
class_embeddings = 'data/shapes/shapes_tiny.npy'

model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes={{_base_.num_classes}},
            class_weights={{_base_.class_weights}},
            in_channels=channels,
            fc_out_channels=fc_out)),
    teacher=dict(_delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained='ckpt/tiny_clip.pt'),
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

max_iters = 4
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False))
log_processor = dict(by_epoch=False, window_size=1)
