# F-ViT on the original OpenAI CLIP ViT-B/16 (frozen): the baseline CLIM improves on.
#   python tools/gen_text_embeddings.py ... -> data/ov_coco/ov_coco_65_vitb16.npy (65 OV-COCO names, ViT-B/16)
#   tools/dist_train.sh configs/fvit/fvit_vitb16_ovcoco.py 8
_base_ = [
    '../_base_/models/fvit_vitb16.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/schedules/fvit_3e.py',
    '../_base_/default_runtime.py',
]
class_embeddings = 'data/ov_coco/ov_coco_65_vitb16.npy'

model = dict(
    backbone=dict(clip_cfg=dict(pretrained='ckpt/ViT-B-16.pt')),
    roi_head=dict(
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes=len(_base_.classes),
            class_weights=_base_.class_weights)))

# Checkpoints hold the frozen CLIP too (self-contained for tools/test.py and tools/demo.py).
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
