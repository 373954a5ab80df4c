# F-ViT on the original OpenAI CLIP ViT-B/16 (frozen) for OV-LVIS: the baseline CLIM improves on,
# with CLIM's OV-LVIS recipe (NAS-FPN, class-agnostic mask head, repeat-factor sampling, 48 epochs).
#   python tools/prepare_ov_lvis.py --train data/lvis_v1/annotations/lvis_v1_train.json \
#       --val data/lvis_v1/annotations/lvis_v1_val.json --out-dir data/lvis_v1/annotations
#   python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \
#       --classes lvis_v1 --templates vild --out data/lvis_v1/lvis_v1_1203_vitb16.npy
#   tools/dist_train.sh configs/fvit/fvit_vitb16_ovlvis.py 4 --amp
# Headline metric: ov_lvis/segm_APr (mask AP of the 337 rare classes).
_base_ = [
    '../_base_/models/fvit_vitb16_ovlvis.py',
    '../_base_/datasets/ov_lvis_detection.py',
    '../_base_/schedules/fvit_ovlvis_4x.py',
    '../_base_/default_runtime.py',
]

model = dict(
    # Reference quirk (detectors.md): CLIM builds its ViT from a file path, which gives plain GELU
    # although the OpenAI weights were trained with QuickGELU. quick_gelu=True is the principled choice.
    backbone=dict(clip_cfg=dict(quick_gelu=False, pretrained='ckpt/ViT-B-16.pt')),
    roi_head=dict(
        bbox_head=dict(category_info=_base_.category_info, num_classes=_base_.num_classes),
        mask_head=dict(num_classes=_base_.num_classes)))

default_hooks = dict(checkpoint=dict(interval=12, max_keep_ckpts=1), logger=dict(interval=50))
