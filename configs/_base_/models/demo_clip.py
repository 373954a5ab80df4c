# The small CLIP of the demo (open_clip model-config format): 64 px input, patch 8 (an 8x8 token grid),
# 4 blocks of width 128. Pre-trained from scratch on the generated shapes' captions by the demo.
# Why patch 8 on 64 px rather than patch 16 on 128 px (the same tokens, so the same cost): docs/demo.md.
demo_clip_input = 64
demo_clip_patch = 8
demo_clip_width = 128
demo_clip_cfg = dict(
    embed_dim=64,
    quick_gelu=False,
    vision_cfg=dict(image_size=demo_clip_input, layers=4, width=demo_clip_width, head_width=32,
                    patch_size=demo_clip_patch, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=128, heads=4, layers=3))
# Prompts for class names: the demo's captions are bare noun phrases ("a star and two rings"), so
# CLIP's photo templates would feed its text tower words it never saw.
demo_templates = ['a {}', 'an {}']
# Region recognition, CLIM mosaics and F-ViT work at twice the CLIP input (the 128 px images), as the
# real configs work above the CLIP resolution.
demo_region_size = 2 * demo_clip_input

# Data pipelines shared by the demo's CLIP stages (pre-training, CLIM, region recognition).
demo_caption_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='CaptionRandomResizedCrop', size=demo_clip_input, scale=(0.9, 1.0), interpolation='bicubic'),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackCaptionInputs'),
]
demo_region_pipeline = [
    dict(type='LoadRegionAnnotations'),
    dict(type='ResizeLongestSide', size=demo_region_size),
    dict(type='PackRegionInputs', mask_stride=demo_clip_patch),
]
