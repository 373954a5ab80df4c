# CLIM refinement of BiomedCLIP (PubMedBERT_256, ViT-B/16) on COCO captions: the reference recipe of
# configs/clim/clim_vitb16_coco.py with BiomedCLIP instead of OpenAI CLIP.
# BiomedCLIP = timm vit_base_patch16_224 image tower + Hugging Face PubMedBERT text tower
# (clim.models.HFTextCLIPModel, zoo entry 'biomedclip'): the v2 dense features come from
# clim/models/towers/timm_vit.py, the trainable groups are [patch embed + cls token + norm_pre], [pos_embed],
# one per block (the last 6: blocks 6-11); the final norm, the projection and the text tower stay frozen.
# Captions: the model tokenizes them itself (BERT WordPiece, 256 tokens), so the caption pipeline has no
# TokenizeCaption (open_clip BPE ids would mean nothing to PubMedBERT).
# Weights: the hub cache ckpt/models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 + the
# BiomedBERT hub entry (ckpt/README.md; check with:
#   python tools/check_ckpt.py --config configs/clim/clim_biomedclip_vitb16_coco.py).
#   tools/dist_train.sh configs/clim/clim_biomedclip_vitb16_coco.py 4 --amp
# Output: work_dirs/clim_biomedclip_vitb16_coco/clip_latest.pt, an export that records its class
# (HFTextCLIPModel): configs/fvit/fvit_biomedclip_vitb16_ovcoco.py takes it with
#   --cfg-options model.backbone.clip_cfg.pretrained=work_dirs/clim_biomedclip_vitb16_coco/clip_latest.pt
# and region recognition (configs/region_eval/region_eval_vitb16_coco.py builds the class the export records) with
#   python tools/test.py configs/region_eval/region_eval_vitb16_coco.py \
#       --cfg-options model.clip.pretrained=work_dirs/clim_biomedclip_vitb16_coco/clip_latest.pt
_base_ = ['./clim_vitb16_coco.py']

model = dict(clip=dict(_delete_=True, type='ZooModel', name='biomedclip'))

# The base pipeline without TokenizeCaption; PackCaptionInputs keeps the raw caption for the model.
caption_train_pipeline = [t for t in _base_.caption_train_pipeline if t['type'] != 'TokenizeCaption']
train_dataloader = dict(dataset=dict(pipeline=caption_train_pipeline))
