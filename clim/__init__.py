"""CLIM: CLIP models, the CLIM method and caption data.

Importing it registers every module in MMDetection's registries and routes MMEngine's checkpoint
I/O through ``clim.engine`` (allow-listed loading under torch>=2.6, atomic writes).
"""
from . import datasets, evaluation, method, models  # noqa: F401
from .engine import install_checkpoint_safety

install_checkpoint_safety()
