# CLIM refinement of OpenAI CLIP ViT-B/16 on CC3M (caption json form): 3 epochs, otherwise the COCO recipe.
#   tools/dist_train.sh configs/clim/clim_vitb16_cc3m.py 4 --amp
# Web-scale shards instead of a json: configs/clim/clim_vitb16_cc3m_wds.py.
_base_ = [
    '../_base_/models/clim_vitb16.py',
    '../_base_/datasets/cc3m_captions.py',
    '../_base_/schedules/clim_cc3m_3e.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
