# CLIPSelf region-proposal mode on COCO train2017 (clipself.md, "proposals_distill"): the reference's
# coco_proposals.json (COCO-style images + annotations[bbox]; see data/README.md), per image 20 shuffled
# proposals, then those with area < 8^2 or > 1024^2 dropped; student boxes = the proposals, teacher crops
# = the proposals enlarged 1.5x about the centre (clipped), at 224 (letterboxed).
_base_ = ['./clipself_coco_patches.py']

clipself_ann_file = 'annotations/coco_proposals.json'
clipself_train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='SampleProposalBoxes', max_boxes=20, min_size=8, max_size=1024, crop_scale=1.5),
    dict(type='PrepareCLIPSelfInputs', image_size={{_base_.det_image_size}}, crop_size={{_base_.clip_input_size}}),
    dict(type='PackCLIPSelfInputs'),
]
train_dataloader = dict(dataset=dict(ann_file=clipself_ann_file, with_proposals=True,
                                     pipeline=clipself_train_pipeline))
