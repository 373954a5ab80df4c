# Deviation from CLIM's reference (docs/reference_parity.md): the detector's ViT runs with QuickGELU, the
# activation the OpenAI / CLIM weights were trained with. Principled, but no published number comes
# from it; everything else is fvit_vitb16_clim_ovcoco.py.
_base_ = ['./fvit_vitb16_clim_ovcoco.py']

model = dict(backbone=dict(clip_cfg=dict(quick_gelu=True)))
