# The small CLIP of the embedded demo (open_clip model-config format): 128 px input, patch 16,
# 4 blocks of width 128. Pre-trained from scratch on the synthetic captions by the demo itself.
demo_clip_cfg = dict(
    embed_dim=64,
    quick_gelu=False,
    vision_cfg=dict(image_size=128, layers=4, width=128, head_width=32, patch_size=16, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=128, heads=4, layers=3))
demo_clip_input = 128
demo_clip_width = 128

# Data pipelines shared by the demo's CLIP stages (pre-training, CLIM, region recognition).
demo_caption_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=demo_clip_input, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackCaptionInputs'),
]
demo_region_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='ResizeLongestSide', size=256),
    dict(type='PackRegionInputs', mask_stride=16),
]
