"""Runtime fixes that make MMEngine 0.10.7 work on the modern stack (torch >= 2.6, CPU-only runs)."""
from .checkpoint_safety import (UnsafeCheckpointError, allowed_checkpoint_globals, atomic_torch_save,
                                install_checkpoint_safety, safe_torch_load)
from .cpu_amp import CPUBf16AmpOptimWrapper
from .distributed import prepare_launch, replace_sync_bn
from .progress import ProgressBarHook

__all__ = ['CPUBf16AmpOptimWrapper', 'UnsafeCheckpointError', 'allowed_checkpoint_globals', 'atomic_torch_save',
           'install_checkpoint_safety', 'ProgressBarHook', 'prepare_launch', 'replace_sync_bn', 'safe_torch_load']
