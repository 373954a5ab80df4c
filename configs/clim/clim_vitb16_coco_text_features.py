# configs/clim/clim_vitb16_coco.py with the frozen caption features precomputed once instead of a text
# forward in every step (the same features: float32, the model's own text forward). First:
#   python tools/precompute_caption_features.py configs/clim/clim_vitb16_coco.py \
#       --out data/coco/caption_features/clim_vitb16_coco.pt
# then train as configs/clim/clim_vitb16_coco.py. Training refuses a feature file of another text tower
# (weights, context length, text_forward) and a caption missing from it.
_base_ = ['./clim_vitb16_coco.py']

caption_features = 'data/coco/caption_features/clim_vitb16_coco.pt'
clip_input_size = 224

train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=clip_input_size, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='PackCaptionInputs'),
    dict(type='AddCaptionFeatures', path=caption_features),
]))
