# CLIPSelf (region proposals) on EVA-02 CLIP L/14-336, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_region_proposals_eva_vitl14.sh: the proposal data of
# configs/clipself/clipself_eva_vitb16_coco_proposals.py at 896 px / 336 px crops, the L/14 model and
# export of configs/clipself/clipself_eva_vitl14_coco_patches.py.
#   tools/dist_train.sh configs/clipself/clipself_eva_vitl14_coco_proposals.py 8 --amp
# Needs ckpt/EVA02_CLIP_L_336_psz14_s6B.pt and data/coco/annotations/coco_proposals.json, train2017/.
_base_ = ['./clipself_eva_vitl14_coco_patches.py']

clipself_ann_file = 'annotations/coco_proposals.json'
clipself_train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='SampleProposalBoxes', max_boxes=20, min_size=8, max_size=1024, crop_scale=1.5),
    dict(type='PrepareCLIPSelfInputs', image_size=_base_.det_image_size, crop_size=_base_.clip_input_size),
    dict(type='PackCLIPSelfInputs'),
]
train_dataloader = dict(dataset=dict(ann_file=clipself_ann_file, with_proposals=True,
                                     pipeline=clipself_train_pipeline))
