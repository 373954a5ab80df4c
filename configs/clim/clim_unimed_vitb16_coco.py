# CLIM refinement of UniMed-CLIP ViT-B/16 on COCO captions: the reference recipe of
# configs/clim/clim_vitb16_coco.py with UniMed-CLIP instead of OpenAI CLIP.
# UniMed-CLIP = open_clip ViT-B/16 (QuickGELU) image tower + Hugging Face BiomedBERT text tower
# (clim.models.HFTextCLIPModel, zoo entry 'unimed-clip-vit-b-16'): dense / region features and the
# 6 trainable groups (blocks 6-11) are those of the OpenAI ViT-B/16; the text tower stays frozen.
# Captions: the model tokenizes them itself (BERT WordPiece, 256 tokens), so the caption pipeline has no
# TokenizeCaption (open_clip BPE ids would mean nothing to BiomedBERT).
# Weights: ckpt/unimed_clip_vit_b16.pt + the BiomedBERT hub entry (ckpt/README.md; check with:
#   python tools/check_ckpt.py --config configs/clim/clim_unimed_vitb16_coco.py).
#   tools/dist_train.sh configs/clim/clim_unimed_vitb16_coco.py 4 --amp
# Output: work_dirs/clim_unimed_vitb16_coco/clip_latest.pt, an export that records its class
# (HFTextCLIPModel): configs/fvit/fvit_unimed_vitb16_ovcoco.py takes it with
#   --cfg-options model.backbone.clip_cfg.pretrained=work_dirs/clim_unimed_vitb16_coco/clip_latest.pt
# and region recognition (configs/region_eval/region_eval_vitb16_coco.py builds the class the export records) with
#   python tools/test.py configs/region_eval/region_eval_vitb16_coco.py \
#       --cfg-options model.clip.pretrained=work_dirs/clim_unimed_vitb16_coco/clip_latest.pt
_base_ = ['./clim_vitb16_coco.py']

model = dict(clip=dict(_delete_=True, type='ZooModel', name='unimed-clip-vit-b-16'))

# The base pipeline without TokenizeCaption; PackCaptionInputs keeps the raw caption for the model.
caption_train_pipeline = [t for t in _base_.caption_train_pipeline if t['type'] != 'TokenizeCaption']
train_dataloader = dict(dataset=dict(pipeline=caption_train_pipeline))
