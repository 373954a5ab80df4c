# Region recognition as the CLIPSelf reference measures it (scripts/test_eva_vitb16_macc_boxes_masks.sh,
# clipself.md "Region-recognition evaluation"). The data protocol is the CLIM one, line for line
# (both repositories share COCOPanopticDataset and zero_shot.py): protocol 'reference' of
# configs/region_eval/region_eval_vitb16_coco.py, 1024 px input, 224 px crops, 64x64 mask grid, ViLD prompts
# embedded with the EVA text tower. The model is EVA02-CLIP-B/16 (clim.models.EvaCLIPModel, built by the CLIP
# factory from the release file) with the CLIPSelf dense path (eva_clip.md: v2 last block, no ln_pre, biased
# head). The original release file by default; a CLIPSelf-refined one (the reference's training file or our
# export) by pretrained:
#   python tools/test.py configs/region_eval/region_eval_eva_vitb16_coco_clipself.py
#   python tools/test.py configs/region_eval/region_eval_eva_vitb16_coco_clipself.py \
#       --cfg-options model.clip.pretrained=ckpt/eva_vitb16_coco_clipself_proposals.pt
_base_ = ['./region_eval_vitb16_coco.py']

model = dict(clip=dict(_delete_=True, type='CLIP', model_name='EVA02-B-16',
                       pretrained='ckpt/EVA02_CLIP_B_psz16_s8B.pt'))
