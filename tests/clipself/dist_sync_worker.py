"""One SGD step of a tiny CLIM and a tiny CLIPSelf in both gradient-sync modes, under torchrun with gloo on CPU.

Launched by test_clipself_grad_sync.py:
    python -m torch.distributed.run --nproc-per-node 2 tests/clipself/dist_sync_worker.py DATA OUT
Each rank builds its models from its own seed (10 + rank: the wrapper must start every rank from rank 0's
weights and teacher), wraps them with the registered ``GradSyncDataParallel`` and takes one train step on
its half of each batch. Writes OUT/rank<r>.pt: per ``<method>_<sync>`` the rank's loss, its weights after
the step, and (CLIPSelf) its teacher's weights.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist


def main(data_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    import clim  # noqa: F401  (registers GradSyncDataParallel)
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODEL_WRAPPERS
    from mmengine.structures import BaseDataElement

    from tests.clim.clim_test_utils import build_tiny_clim, sgd_optimizer
    from tests.clipself.clipself_test_utils import build_tiny_clipself

    with torch.serialization.safe_globals([BaseDataElement]):
        blob = torch.load(data_path, weights_only=True)
    out = {}
    for method, build in (('clim', build_tiny_clim), ('clipself', build_tiny_clipself)):
        batch, local = blob[method], blob[f'{method}_local']
        sl = slice(rank * local, (rank + 1) * local)
        data = dict(inputs=batch['inputs'][sl], data_samples=batch['data_samples'][sl])
        for sync in ('synced', 'reference'):
            model = build(blob['clip_cfg'], seed=10 + rank)
            wrapped = MODEL_WRAPPERS.build(dict(type='GradSyncDataParallel', sync=sync, module=model,
                                                device_ids=None))
            log_vars = wrapped.train_step(data, OptimWrapper(sgd_optimizer(model, lr=blob['lr'])))
            res = dict(loss=float(log_vars['loss']),
                       state={k: v.detach().clone() for k, v in model.state_dict().items()})
            if method == 'clipself':
                res['teacher'] = {k: v.clone() for k, v in model.teacher.state_dict().items()}
            out[f'{method}_{sync}'] = res
    torch.save(out, Path(out_dir) / f'rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
