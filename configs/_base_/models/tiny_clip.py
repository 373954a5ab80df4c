# A scaled-down ViT CLIP (open_clip model-config format) with the same code paths as ViT-B/16, for the
# tiny test configs. Mirrors tests/helpers.py TINY_CLIP_CFG (tests check they agree).
tiny_clip_cfg = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, layers=3, width=64, head_width=32, patch_size=16, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2))
