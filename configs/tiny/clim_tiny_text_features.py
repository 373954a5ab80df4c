# configs/tiny/clim_tiny.py with precomputed caption features (see configs/clim_coco_vitb16_text_features.py):
#   python tools/precompute_caption_features.py configs/tiny/clim_tiny.py \
#       --out work_dirs/clim_tiny/caption_features.pt
#   python tools/train.py configs/tiny/clim_tiny_text_features.py
_base_ = ['./clim_tiny.py']

caption_features = 'work_dirs/clim_tiny/caption_features.pt'

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=64, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='PackCaptionInputs'),
    dict(type='AddCaptionFeatures', path=caption_features),
]))
