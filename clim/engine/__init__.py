"""Runtime fixes that make MMEngine 0.10.7 work on the modern stack (torch >= 2.6, CPU-only runs)."""
from .checkpoint_safety import (UnsafeCheckpointError, allowed_checkpoint_globals, atomic_torch_save,
                                install_checkpoint_safety, safe_torch_load)
from .cpu_amp import CPUAmpProbe, CPUBf16AmpOptimWrapper, probe_cpu_bf16
from .distributed import prepare_launch, replace_sync_bn
from .grad_sync import SYNC_MODES, GradSyncDataParallel, ReplicaCheckpointHook, sync_mode
from .mmcv_cuda_fallback import install_mmcv_cuda_fallback
from .progress import ProgressBarHook
from .rng_state import RandomStateHook, capture_rng_state, restore_rng_state

__all__ = ['CPUAmpProbe', 'CPUBf16AmpOptimWrapper', 'probe_cpu_bf16', 'UnsafeCheckpointError',
           'allowed_checkpoint_globals', 'atomic_torch_save', 'GradSyncDataParallel', 'ReplicaCheckpointHook',
           'SYNC_MODES', 'sync_mode',
           'install_checkpoint_safety', 'install_mmcv_cuda_fallback', 'ProgressBarHook', 'prepare_launch',
           'RandomStateHook', 'capture_rng_state', 'restore_rng_state',
           'replace_sync_bn', 'safe_torch_load']
