# Region recognition of a tiny CLIP on the shapes val split (boxes, masks, crops; all classes are things):
#   python tools/test.py configs/tiny/region_eval_tiny_shapes_clim_ovd.py \
#       --cfg-options model.clip.pretrained=work_dirs/clim_tiny_shapes/clip_latest.pt
_base_ = ['./clim_tiny_shapes.py']

model = dict(
    _delete_=True,
    type='RegionRecognition',
    clip=dict(type='CLIPModel', model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    classifier=dict(mode='v2', with_boxes=True, with_masks=True, with_crops=True, crop_size=64,
                    templates='short'),
    data_preprocessor=dict(type='CLIMDataPreprocessor', pad_size=128, pad_size_divisor=16))
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
custom_hooks = []
val_dataloader = None
val_cfg = None
val_evaluator = None
