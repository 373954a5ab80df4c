# Region recognition as the CLIPSelf reference measures it (scripts/test_eva_vitb16_macc_boxes_masks.sh,
# clipself.md "Region-recognition evaluation"). The data protocol is the CLIM one, line for line
# (both repositories share COCOPanopticDataset and zero_shot.py): protocol 'reference' of
# configs/region_eval/region_eval_vitb16_coco.py, 1024 px input, 224 px crops, 64x64 mask grid, ViLD prompts.
# The model is EVA02-CLIP-B/16 with the CLIPSelf dense path (eva_clip.md): NOT AVAILABLE YET in this
# project -- CLIPModel refuses the open_clip 'EVA02-B-16' tower (timm EVA trunk) with a clear error at
# build. Until an EVA-CLIP model lands, run the reference protocol on any supported CLIP with
# configs/region_eval/region_eval_vitb16_coco.py.
#   python tools/test.py configs/region_eval/region_eval_eva_vitb16_coco_clipself.py \
#       --cfg-options model.clip.pretrained=ckpt/EVA02_CLIP_B_psz16_s8B.pt
_base_ = ['./region_eval_vitb16_coco.py']

model = dict(clip=dict(_delete_=True, type='CLIPModel', model_name='EVA02-B-16',
                       pretrained='ckpt/EVA02_CLIP_B_psz16_s8B.pt'))
