# Tiny F-ViT for OV-LVIS on the synthetic shapes in LVIS format: the real-scale OV-LVIS bases (NAS-FPN,
# class-agnostic mask head, repeat-factor sampling, federated mask / box AP) with a tiny CLIP, small
# images and narrow heads, so a few CPU iterations run in seconds (tests/lvis). Working-directory layout:
#   data/shapes_lvis/ (see configs/_base_/datasets/ov_lvis_shapes_tiny.py), ckpt/tiny_clip.pt and
#   data/shapes_lvis/shapes_tiny.npy (the 10 class names' embeddings from that CLIP)
#   python tools/train.py configs/tiny/fvit_tiny_shapes_lvis.py --work-dir work_dirs/fvit_tiny_shapes_lvis
_base_ = [
    '../_base_/models/fvit_vitb16_ovlvis.py',
    '../_base_/models/tiny_clip.py',
    '../_base_/datasets/ov_lvis_shapes_tiny.py',
    '../_base_/schedules/fvit_ovlvis_4x.py',
    '../_base_/default_runtime.py',
]

clip_width = 64
channels = 32
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    backbone=dict(
        clip_cfg=dict(
            _delete_=True, type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained='ckpt/tiny_clip.pt'),
        out_indices=(0, 1, 1, 2)),
    neck=[dict(_base_.model.neck[0], in_channels=clip_width, norm_cfg=norm_cfg),
          dict(_base_.model.neck[1], in_channels=[clip_width] * 4, out_channels=channels, stack_times=1,
               norm_cfg=norm_cfg)],
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            category_info=_base_.category_info,
            class_embeddings='data/shapes_lvis/shapes_tiny.npy',
            num_classes=_base_.num_classes,
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=64,
            norm_cfg=norm_cfg),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_classes=_base_.num_classes, num_convs=1, in_channels=channels,
                       conv_out_channels=channels, norm_cfg=norm_cfg)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
auto_scale_lr = dict(enable=False)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
