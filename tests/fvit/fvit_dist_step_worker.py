"""One SGD step of the tiny F-ViT on this rank's image of a two-image batch, under torchrun (gloo on CPU).

Launched by test_fvit_distributed.py:
    python -m torch.distributed.run --nproc-per-node 2 fvit_dist_step_worker.py WORKSPACE OUT
Writes OUT/rank<r>.pt: the rank's loss and the trainable weights after the step.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

# Imports: this script's folder is on the path (torchrun runs it as a script) and tests.helpers.torchrun
# puts the repository root on PYTHONPATH.


def main(workspace: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    import clim  # noqa: F401
    import ovdet  # noqa: F401
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from fvit_test_utils import STEP_LR, build_tiny_fvit, tiny_fvit_config, tiny_train_batch

    init_default_scope('mmdet')
    cfg = tiny_fvit_config(Path(workspace))
    batch = tiny_train_batch(cfg)
    model = build_tiny_fvit(cfg)
    # As tools/dist_train.sh wraps it on a CPU machine (clim.engine.prepare_launch).
    ddp = MMDistributedDataParallel(module=model, device_ids=None, broadcast_buffers=False,
                                    find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=STEP_LR))
    torch.manual_seed(1000 + rank)  # the RPN / RoI samplers draw from the global generator
    log_vars = ddp.train_step(dict(inputs=batch['inputs'][rank:rank + 1],
                                   data_samples=batch['data_samples'][rank:rank + 1]), wrapper)
    torch.save(dict(loss=float(log_vars['loss']),
                    state={k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}),
               Path(out_dir) / f'rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
