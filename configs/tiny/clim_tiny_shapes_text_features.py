# configs/tiny/clim_tiny_shapes.py with precomputed caption features
# (see configs/clim/clim_vitb16_coco_text_features.py):
#   python tools/precompute_caption_features.py configs/tiny/clim_tiny_shapes.py \
#       --out work_dirs/clim_tiny_shapes/caption_features.pt
#   python tools/train.py configs/tiny/clim_tiny_shapes_text_features.py
_base_ = ['./clim_tiny_shapes.py']

caption_features = 'work_dirs/clim_tiny_shapes/caption_features.pt'

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=64, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='PackCaptionInputs'),
    dict(type='AddCaptionFeatures', path=caption_features),
]))
