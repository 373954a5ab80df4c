# F-ViT (F-VLM recipe as in CLIPSelf / CLIM) on a frozen OpenAI CLIP ViT-B/16.
# Only the neck (pyramid adapters + FPN), RPN and RoI head train; the CLIP stays bit-identical.
# The classifier is a class text-embedding file (tools/gen_text_embeddings.py); configs that use this
# base set roi_head.bbox_head.{class_embeddings, num_classes, class_weights} for their dataset.

_base_ = ['./two_stage_fpn.py']

# Plain GELU: CLIM's reference builds the detector's ViT from a file path, which gives GELU although the
# OpenAI / CLIM weights were trained with QuickGELU; its published numbers come from that detector
# (docs/reference_parity.md; configs/fvit/*_quickgelu.py is the principled, unmeasured alternative).
# Stating the activation here (not inferring it from the file) also lets a trained detector checkpoint
# be rebuilt without the original CLIP file (ovdet.apis.load_detector).
clip_cfg = dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=False, pretrained='ckpt/ViT-B-16.pt')
clip_width = 768
norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py reverts SyncBN to BN without CUDA

model = dict(
    type='FViT',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # CLIP's normalization, in pixel units (RGB).
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='CLIPViTBackbone',
        clip_cfg=clip_cfg,
        out_indices=(3, 5, 7, 11)),
    # The stride-16 tokens -> strides 4-32 (transposed convs, identity, max-pool), then the FPN.
    # Configs that change a width restate both: dict(_base_.model.neck[0], in_channels=...), ...
    neck=[
        dict(type='SimplePyramid', in_channels=clip_width, norm_cfg=norm_cfg),
        dict(type='FPN', in_channels=[clip_width] * 4, out_channels=256, num_outs=5, norm_cfg=norm_cfg),
    ],
    rpn_head=dict(num_convs=2),  # the rest: two_stage_fpn.py
    roi_head=dict(
        type='FViTRoIHead',
        bbox_head=dict(
            type='TextEmbeddingBBoxHead',
            class_embeddings='data/ov_coco/ov_coco_80_vitb16_vild.npy',
            num_classes=80,
            class_weights=None,  # set per dataset: 1 base, 0 novel / unevaluated
            bg_weight=0.6,
            background='learned',  # a linear layer with bias on the constant 1; also CLIP's background column
            temperature=50.0,
            in_channels=256,
            roi_feat_size=7,
            num_shared_convs=4,
            num_shared_fcs=2,
            num_cls_fcs=1,  # one more fc on each branch after the shared ones (the reference head)
            num_reg_fcs=1,
            conv_out_channels=256,
            fc_out_channels=1024,
            norm_cfg=norm_cfg,
            reg_class_agnostic=True,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
            # final = det^(1-a) * clip^a per column, a = alpha (weight > 0: base classes and the background)
            # / beta (others); clip = softmax over classes + background of 75 * cos.
            ensemble=dict(alpha=0.1, beta=0.8, clip_temperature=75.0))),
    # train_cfg and the RPN's test_cfg: configs/_base_/models/two_stage_fpn.py
    test_cfg=dict(rcnn=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.4), max_per_img=100)))

# Fail fast if a dataset's class list and the detector's classes differ in number (labels would shift).
custom_hooks = [dict(type='ClassVocabularyCheckHook')]
