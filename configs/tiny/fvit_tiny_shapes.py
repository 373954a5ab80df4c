# Tiny F-ViT on the synthetic shapes benchmark: the real-scale bases with a tiny CLIP, small images and
# narrow heads, so a few CPU iterations run in seconds (tests/fvit). Paths are relative to the working
# directory:
#   python -m ovd_demo.shapes --out data/shapes --num-train 8 --num-val 4
#   ckpt/tiny_clip.pt: a CLIPModel checkpoint of `tiny_clip_cfg` (e.g. clim.models.save_clip_checkpoint)
#   data/shapes/shapes_tiny.npy: the 10 class names' embeddings from that CLIP (tools/gen_text_embeddings.py)
#   python tools/train.py configs/tiny/fvit_tiny_shapes.py --work-dir work_dirs/fvit_tiny_shapes
# The train json must list all 10 categories (base boxes only), so train and val share one label space.
_base_ = [
    '../_base_/models/fvit_vitb16.py',
    '../_base_/models/tiny_clip.py',
    '../_base_/datasets/shapes_tiny_detection.py',
    '../_base_/schedules/fvit_3e.py',
    '../_base_/default_runtime.py',
]

clip_width = 64
channels = 32
norm_cfg = dict(type='BN', requires_grad=True)
class_embeddings = 'data/shapes/shapes_tiny.npy'

model = dict(
    backbone=dict(
        clip_cfg=dict(
            _delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained='ckpt/tiny_clip.pt'),
        out_indices=(0, 1, 1, 2)),
    neck=[dict(_base_.model.neck[0], in_channels=clip_width, norm_cfg=norm_cfg),
          dict(_base_.model.neck[1], in_channels=[clip_width] * 4, out_channels=channels, norm_cfg=norm_cfg)],
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes={{_base_.num_classes}},
            class_weights={{_base_.class_weights}},
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=64,
            norm_cfg=norm_cfg)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
# Seeded: the tests that read detections of the 1-epoch model must not depend on a random initialization.
randomness = dict(seed=0)
