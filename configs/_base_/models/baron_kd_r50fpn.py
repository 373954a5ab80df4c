# BARON-KD R50-FPN as the reference builds it: R50 + normed FPN
# with trainable SyncBN (nothing frozen, SoCo* init), the RPN with the detached objectness branch, the
# 4-conv frozen-BN box head with the MLP regressor and the pseudo-word classifier through the frozen CLIP
# ViT-B/32 text transformer (which is also the KD teacher). Configs set roi_head.bbox_head.class_weights.
teacher_cfg = dict(type='CLIPModel', model_name='ViT-B-32', quick_gelu=True, pretrained='ckpt/clip_vitb32.pth')
# "attn12" embeddings: last-block EOT features of the 63 ViLD prompts (ovdet.models.baron.attn12_class_embeddings)
class_embeddings = 'data/ov_coco/coco_clip_hand_craft_attn12.npy'  # 80 rows, COCO id order
norm_cfg = dict(type='SyncBN', requires_grad=True)
fc_out_channels = 1024

_base_ = ['./two_stage_fpn.py']

model = dict(
    type='BaronKD',
    data_preprocessor=dict(
        # det and KD images are normalized and padded as two batches
        type='BranchDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5, norm_cfg=norm_cfg),
    rpn_head=dict(type='DetachedObjectnessRPNHead'),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_head=dict(
            type='BaronBBoxHead',
            class_embeddings=class_embeddings,
            num_classes=80,
            class_weights=None,  # set per dataset: 1 base, 0 novel / unevaluated
            bg_weight=0.7,
            in_channels=256,
            roi_feat_size=7,
            num_shared_convs=4,
            num_shared_fcs=1,
            conv_out_channels=256,
            fc_out_channels=fc_out_channels,
            norm_cfg=dict(type='BN', requires_grad=False),  # frozen (kept in eval mode by the head)
            reg_class_agnostic=True,
            mlp_regressor=True,
            words_per_region=6,
            word_dim=512,
            word_dropout=0.5,
            temperature=50.0,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    teacher=teacher_cfg,
    kd_proposal_cfg=dict(topk=300, score_thr=0.85, nms_thr=0.1, min_ratio=0.25, max_ratio=4.0, min_area_ratio=0.01),
    sampler_cfg=dict(max_groups=3, max_orders=2, max_prob=0.3, exponent=3.0, cut_off=0.3, interval=-0.1),
    bag_loss=dict(temperature=30.0, loss_weight=1.0, queue_size=1024),
    single_loss=dict(temperature=50.0, loss_weight=0.1, queue_size=1024),
    # start_iter 20000 of the reference counts KD images (2 per step): the cache starts at step 10k
    boxes_cache=dict(start_calls=20000, score_thr=0.85, nms_thr=0.1, max_boxes=300),
    single_mask='reference',  # spec S12; 'exact' is the fix
    bag_mask='reference',  # spec S2 (float32 group ids); 'exact' is the fix
    fp16_autocast=True,
    soco_checkpoint='ckpt/res50_fpn_soco_star_400.pth',
    test_cfg=dict(rcnn=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))

# Fail fast if the dataset's class list and the detector's classes differ in number.
custom_hooks = [dict(type='ClassVocabularyCheckHook')]
