# F-ViT for OV-LVIS (CLIM's mask_rcnn_nasfpn recipe): the F-ViT of fvit_vitb16.py with a NAS-FPN neck,
# a class-agnostic FCN mask head and the LVIS test settings. Configs using this base set the CLIP
# checkpoint, the 1203-class embedding file and the category-info file (class weights).
_base_ = ['./fvit_vitb16.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py reverts SyncBN to BN without CUDA

model = dict(
    neck=[
        _base_.model.neck[0],  # the simple pyramid of fvit_vitb16.py
        dict(
            type='NASFPN',
            in_channels=[768] * 4,
            out_channels=256,
            num_outs=5,  # strides 4-32 + one extra level (1x1 conv + norm, 2x2 max-pool): stride 64
            stack_times=7,
            start_level=0,
            norm_cfg=norm_cfg),
    ],
    roi_head=dict(
        # The rest of the box head (convs, fcs, learned background, coder, losses): fvit_vitb16.py.
        bbox_head=dict(
            type='CategoryInfoBBoxHead',
            category_info='data/lvis_v1/annotations/lvis_v1_train_base_cat_info.json',  # class weights
            class_embeddings='data/lvis_v1/lvis_v1_1203_vitb16.npy',
            num_classes=1203,
            bg_weight=0.9,
            # base columns (and background) det^0.65 * clip^0.35, rare det^0.35 * clip^0.65, clip =
            # softmax of 50 * cos.
            ensemble=dict(alpha=0.35, beta=0.65, clip_temperature=50.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            class_agnostic=True,  # one mask channel for every class, novel ones included
            num_classes=1203,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(match_low_quality=True),
            mask_size=28)),
    test_cfg=dict(
        rcnn=dict(score_thr=1e-4, nms=dict(type='nms', iou_threshold=0.5), max_per_img=300,
                  mask_thr_binary=0.5)))
