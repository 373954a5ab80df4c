# Deviation from CLIM's reference (docs/reference_parity.md): the 65-class test vocabulary of CLIPSelf's
# F-ViT. The 15 unevaluated COCO classes are not in the label space, so they no longer compete for the
# 100 detections per image; novel AP50 is not comparable with the 80-class protocol.
#   python tools/gen_text_embeddings.py --model-name ViT-B-16 --pretrained ckpt/ViT-B-16.pt \
#       --classes ov_coco_65 --templates vild --out data/ov_coco/ov_coco_65_vitb16_vild.npy
_base_ = ['./fvit_vitb16_clim_ovcoco.py']

classes = _base_.ov65_classes
model = dict(
    roi_head=dict(
        bbox_head=dict(
            class_embeddings='data/ov_coco/ov_coco_65_vitb16_vild.npy',
            num_classes=len(classes),
            class_weights=_base_.ov65_class_weights)))
train_dataloader = dict(dataset=dict(metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
