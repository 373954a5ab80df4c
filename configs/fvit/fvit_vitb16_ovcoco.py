# F-ViT on the original OpenAI CLIP ViT-B/16 (frozen): the baseline CLIM improves on, computed as CLIM's
# reference code computes it (docs/reference_parity.md): plain GELU in the ViT, all 80 COCO classes live
# at test time (the metric reads the 65), ViLD-prompt class embeddings, float32 images, pad then flip with
# the reference's pad value, AMP, aspect-ratio grouped batches, lr auto-scaled from batch 64.
#   python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \
#       --classes coco_80 --templates vild --out data/ov_coco/ov_coco_80_vitb16_vild.npy
#   tools/dist_train.sh configs/fvit/fvit_vitb16_ovcoco.py 8
_base_ = [
    '../_base_/models/fvit_vitb16.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/schedules/fvit_3e.py',
    '../_base_/default_runtime.py',
]
# The class embeddings come from the original OpenAI CLIP (QuickGELU) for every F-ViT of this family,
# refined or not: CLIM leaves the text tower untouched.
class_embeddings = 'data/ov_coco/ov_coco_80_vitb16_vild.npy'

model = dict(
    backbone=dict(clip_cfg=dict(pretrained='ckpt/ViT-B-16.pt')),
    roi_head=dict(
        bbox_head=dict(
            class_embeddings=class_embeddings,
            num_classes=len(_base_.classes),
            class_weights=_base_.class_weights)))

# fp16 AMP as the reference trains (on a CPU-only machine tools/train.py uses the CPU AMP wrapper instead).
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
auto_scale_lr = dict(enable=True, base_batch_size=64)

# Checkpoints hold the frozen CLIP too (self-contained for tools/test.py and tools/demo.py).
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
