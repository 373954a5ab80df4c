# BARON-KD model: Faster R-CNN R50-FPN whose region embeddings are distilled from a frozen CLIP teacher
# through bags of regions (ovdet/models/baron). Configs using it set roi_head.bbox_head.class_weights.
teacher_cfg = dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True, pretrained='ckpt/ViT-B-16.pt')
class_embeddings = 'data/ov_coco/ov_coco_65_vitb16.npy'
norm_cfg = dict(type='BN', requires_grad=True)
fc_out_channels = 1024

_base_ = ['./two_stage_fpn.py']

model = dict(
    type='BaronKD',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # torchvision ImageNet normalization for the ResNet; the teacher crops are re-normalized with
        # CLIP's mean / std inside BaronKD.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='ckpt/resnet50-0676ba61.pth')),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    roi_head=dict(
        type='BaronRoIHead',
        bbox_head=dict(
            # F-ViT's text-embedding head: classifier = class text embeddings + learned background;
            # novel / unevaluated logits masked to -inf in training. No CLIP score ensemble at test.
            type='TextEmbeddingBBoxHead',
            class_embeddings=class_embeddings,
            num_classes=65,
            class_weights=None,  # set per dataset: 1 base, 0 novel / unevaluated
            bg_weight=0.7,
            temperature=50.0,
            ensemble=None,
            in_channels=256,
            roi_feat_size=7,
            num_shared_convs=0,
            num_shared_fcs=2,
            fc_out_channels=fc_out_channels,
            reg_class_agnostic=True,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    teacher=teacher_cfg,
    # top-300 RPN proposals, objectness >= 0.85, shape / area filters, NMS 0.1, GT boxes added
    proposal_cfg=dict(topk=300, objectness_thr=0.85, nms_thr=0.1, min_area_ratio=0.01, max_area_ratio=0.8,
                      max_aspect_ratio=4.0, min_size=4.0, max_per_img=None),
    # 3x3 grid of the proposal's size, up to 3 groups per proposal, 2 random orderings each
    sampler_cfg=dict(num_groups=3, num_orders=2, min_inside=0.5),
    # 6 pseudo words per region of the text width (512 for ViT-B), word dropout 0.5
    word_cfg=dict(in_features=fc_out_channels, words_per_region=6, word_dropout=0.5),
    bag_loss=dict(temperature=30.0, loss_weight=1.0, queue_size=1024),
    single_loss=dict(temperature=50.0, loss_weight=0.1, queue_size=1024),
    # train_cfg and the RPN's test_cfg: configs/_base_/models/two_stage_fpn.py
    test_cfg=dict(rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))

# Fail fast if the dataset's class list and the detector's classes differ in number.
custom_hooks = [dict(type='ClassVocabularyCheckHook')]
