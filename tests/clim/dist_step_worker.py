"""One CLIM training step on this rank's half of a global batch, under torchrun with gloo on CPU.

Launched by test_clim_distributed.py:
    python -m torch.distributed.run --nproc-per-node 2 dist_step_worker.py DATA OUT
Writes OUT/rank<r>.pt with the rank's loss, the mean loss over ranks and the updated weights (after
one AdamW step, and after one SGD step of a second copy of the model).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

# Imports: this script's folder is on the path (torchrun runs it as a script) and tests.helpers.torchrun
# puts the repository root on PYTHONPATH.


def main(data_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    import clim  # noqa: F401
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper

    from clim_test_utils import build_tiny_clim, sgd_optimizer, step_optimizer

    from mmengine.structures import BaseDataElement

    # The batch file (written by the test) holds tensors and the data samples: allow exactly those.
    with torch.serialization.safe_globals([BaseDataElement]):
        blob = torch.load(data_path, weights_only=True)
    model = build_tiny_clim(blob['clip_cfg'])
    ddp = MMDistributedDataParallel(module=model, device_ids=None)
    wrapper = OptimWrapper(step_optimizer(model))
    local = blob['local_batch']
    sl = slice(rank * local, (rank + 1) * local)
    data = dict(inputs=blob['images'][sl], data_samples=blob['samples'][sl])
    log_vars = ddp.train_step(data, wrapper)
    # The same step with SGD, where the weight change is the (DDP-averaged) gradient itself.
    sgd_model = build_tiny_clim(blob['clip_cfg'])
    sgd_ddp = MMDistributedDataParallel(module=sgd_model, device_ids=None)
    sgd_ddp.train_step(data, OptimWrapper(sgd_optimizer(sgd_model)))
    loss = torch.tensor(float(log_vars['loss_contrast']))
    mean_loss = loss.clone()
    dist.all_reduce(mean_loss)
    mean_loss /= world
    torch.save(dict(loss=float(loss), mean_loss=float(mean_loss),
                    state={k: v.detach().clone() for k, v in model.state_dict().items()},
                    sgd_state={k: v.detach().clone() for k, v in sgd_model.state_dict().items()}),
               Path(out_dir) / f'rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
