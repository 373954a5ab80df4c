# BARON-KD (Aligning Bag of Regions, Wu et al. CVPR 2023) on OV-COCO: Faster R-CNN R50-FPN whose region
# embeddings are distilled from a frozen CLIP teacher through bags of regions (ovdet/models/baron).
# Teacher (and the text encoder that turns pseudo words into bag embeddings): any CLIP the wrapper
# loads; here OpenAI ViT-B/16 (the BARON paper used ViT-B/32). The class-embedding file must come from
# the same CLIP (tools/gen_text_embeddings.py), since the region embeddings live in its space.
# Weights needed in ckpt/ (offline): ViT-B-16.pt and the torchvision ImageNet ResNet-50
# (resnet50-0676ba61.pth, what mmdet's `torchvision://resnet50` resolves to).
_base_ = [
    '../_base_/models/baron_kd_r50fpn.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/schedules/baron_90k.py',
    '../_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(class_weights=_base_.class_weights)))  # 1 base, 0 novel
train_dataloader = dict(batch_size=2, num_workers=2)  # x 8 GPUs = batch 16
# Iteration-based schedule (configs/_base_/schedules/baron_90k.py): checkpoints and logs by iteration.
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10000, by_epoch=False))
log_processor = dict(by_epoch=False)
