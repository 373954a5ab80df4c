# Tiny CLIPSelf in region-proposal mode: configs/tiny/clipself_tiny_shapes_patches.py with the ground-truth boxes of the
# shapes benchmark as the proposal file (COCO-style images + annotations[bbox], as coco_proposals.json).
#   python tools/train.py configs/tiny/clipself_tiny_shapes_proposals.py \
#       --work-dir work_dirs/clipself_tiny_shapes_proposals
_base_ = ['./clipself_tiny_shapes_patches.py']

train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='SampleProposalBoxes', max_boxes=20, min_size=8, max_size=1024, crop_scale=1.5),
    dict(type='PrepareCLIPSelfInputs', image_size={{_base_.det_image_size}}, crop_size={{_base_.clip_input_size}}),
    dict(type='PackCLIPSelfInputs'),
]
train_dataloader = dict(dataset=dict(with_proposals=True, pipeline=train_pipeline))
