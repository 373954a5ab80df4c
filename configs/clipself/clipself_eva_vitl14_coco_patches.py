# CLIPSelf (image patches) on EVA-02 CLIP L/14-336, COCO train2017, 6 epochs: the reference recipe of
# scripts/train_clipself_coco_image_patches_eva_vitl14.sh (clipself.md): student input 896 px (a 64 x 64
# map at patch 14), teacher crops at 336, all 24 blocks train, export 0.95 * trained + 0.05 * original.
#   tools/dist_train.sh configs/clipself/clipself_eva_vitl14_coco_patches.py 8 --amp
# Needs ckpt/EVA02_CLIP_L_336_psz14_s6B.pt (zoo entry eva02-clip-l-14-336) and data/coco/ as the B/16 config.
_base_ = ['./clipself_eva_vitb16_coco_patches.py']

det_image_size = 896
clip_input_size = 336
eva_clip_cfg = dict(type='CLIP', model_name='EVA02-L-14-336', pretrained='ckpt/EVA02_CLIP_L_336_psz14_s6B.pt')
model = dict(
    clip=dict(_delete_=True, **eva_clip_cfg),
    unlocked_groups=24,
    region_eval=dict(crop_size=clip_input_size),
    # Pad to the 896 square the pipeline letterboxes into; 896 = 64 patches of 14.
    data_preprocessor=dict(pad_size=det_image_size, pad_size_divisor=14))

clipself_train_pipeline = [
    dict(t, image_size=det_image_size, crop_size=clip_input_size) if t['type'] == 'PrepareCLIPSelfInputs' else t
    for t in _base_.clipself_train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=clipself_train_pipeline))
# The val loop's region recognition at the training size, masks on the 64 x 64 grid of the dense map.
region_test_pipeline = [
    dict(t, size=det_image_size) if t['type'] == 'ResizeLongestSide' else
    dict(t, mask_stride=14) if t['type'] == 'PackRegionInputs' else t
    for t in _base_.region_test_pipeline]
val_dataloader = dict(dataset=dict(pipeline=region_test_pipeline))
test_dataloader = val_dataloader
custom_hooks = [dict(type='CLIPExportHook', alpha=0.95, interval=_base_.max_epochs)]
