# Deviation from CLIM's reference (docs/reference_parity.md): padding is CLIP's mean colour in the
# image's own (BGR) channel order, so padded pixels are 0 after normalization, like the preprocessor's
# batch padding. The reference pads with the mean in RGB order on a BGR image (about -0.27 / 0 / +0.27).
_base_ = ['./fvit_vitb16_clim_ovcoco.py']

image_size = _base_.image_size
pad_val = _base_.zero_pad_val
train_pipeline = [
    dict(type='Pad', size=image_size, pad_val=pad_val) if t['type'] == 'Pad' else t
    for t in _base_.train_pipeline]
test_pipeline = [
    dict(type='Pad', size=image_size, pad_val=pad_val) if t['type'] == 'Pad' else t
    for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
