"""Helpers shared by several test areas (importable as ``tests.helpers``; conftest modules are not)."""
from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]

# A scaled-down ViT CLIP (open_clip model-config format). Same code paths as ViT-B/16; the tiny
# configs under configs/tiny/ mirror it (a test checks they agree).
TINY_CLIP_CFG: dict = dict(
    embed_dim=32,
    quick_gelu=False,
    vision_cfg=dict(image_size=64, layers=3, width=64, head_width=32, patch_size=16, mlp_ratio=2.0),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=2),
)


def write_torchscript_state(state_dict: Mapping, path: Path, extra: Mapping | None = None,
                            half: bool = True) -> Path:
    """A TorchScript archive whose state dict is ``state_dict`` (+ ``extra`` entries), floats in fp16 when
    ``half``, as OpenAI's released CLIP ``.pt`` files are written."""
    import torch
    from torch import nn

    class Node(nn.Module):  # a parameter container nested like the dotted key names (scriptable)
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Node()
    for key, value in {**state_dict, **(extra or {})}.items():
        *parents, leaf = key.split('.')
        mod = root
        for name in parents:
            if name not in mod._modules:
                mod.add_module(name, Node())
            mod = mod._modules[name]
        value = value.detach().clone()
        if half and value.is_floating_point():
            value = value.half()
        if value.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
        else:
            mod.register_buffer(leaf, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def total_loss(losses: Mapping) -> object:
    """The sum of every ``loss*`` term of an mmdet ``mode='loss'`` result (tensors or lists of tensors)."""
    import torch

    return sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
               for k, v in losses.items() if 'loss' in k)


def check_fvit_predicts(model, clip, packed: dict) -> None:
    """F-ViT at test time: one ViT pass gives the pyramid and the CLIP dense map (equal to ``clip``'s v2 dense
    features), and ``predict`` returns boxes for every image of ``packed`` (mmdet's demo inputs)."""
    import torch

    model.eval()
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        _, dense = model.backbone.forward_with_dense(data['inputs'])
        torch.testing.assert_close(dense, clip.dense_features(data['inputs']))
        out = model(**data, mode='predict')
    assert len(out) == len(packed['inputs']) and out[0].pred_instances.bboxes.shape[-1] == 4


def run_tool(args: list[str], cwd: Path, timeout: int = 600, threads: int = 2) -> subprocess.CompletedProcess:
    """Run a repo tool with the test interpreter (``threads`` intra-op threads per process); fail with its
    output on a non-zero exit."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{args[0]} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n'
                             f'--- stderr\n{proc.stderr[-6000:]}')
    return proc


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported as a module, to call its functions (the tools are scripts, not a
    package; what they share lives in the library, so no tool imports a sibling)."""
    spec = importlib.util.spec_from_file_location(f'tools_{name}', REPO_ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_metrics(stdout: str) -> dict[str, float]:
    """The metrics dict tools/test.py prints last (``{'ov_coco/novel_ap50': 0.1234, ...}``)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith('{')]
    if not lines:
        raise AssertionError(f'no metrics printed:\n{stdout[-3000:]}')
    return {k: float(v) for k, v in re.findall(r"'([\w/]+)': ([-0-9.eE+]+|nan)", lines[-1])}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a torchrun rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(script: Path, args: list[str], nproc: int = 2, cwd: Path | None = None,
             timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``script`` on ``nproc`` local processes with torchrun (one thread each; gloo on CPU); fail with
    its output on a non-zero exit."""
    return run_tool(['-m', 'torch.distributed.run', '--nproc-per-node', str(nproc), '--master-addr', '127.0.0.1',
                     '--master-port', str(free_port()), str(script), *args], cwd=cwd or REPO_ROOT,
                    timeout=timeout, threads=1)


def make_tiny_detector_workspace(root: Path) -> dict:
    """The layout the tiny detector configs expect, relative to ``root`` (their working directory):
    ``data/shapes/`` (8 train / 4 val images, 128 px), ``ckpt/tiny_clip.pt`` (a CLIM-format export of
    the tiny CLIP, seed 0), ``data/shapes/shapes_tiny.npy`` (its class-name embeddings) and
    ``data/shapes/shapes_tiny_attn12.npy`` (its BARON "attn12" embeddings, one prompt per class, the file
    configs/tiny/baron_kd_tiny_shapes.py reads)."""
    import numpy as np
    import torch

    from clim.models import CLIPModel, save_clip_checkpoint
    from ovd_demo.shapes import SHAPE_CLASSES, generate_shapes_dataset

    paths = generate_shapes_dataset(root / 'data' / 'shapes', num_train=8, num_val=4, image_size=128, seed=0)
    torch.manual_seed(0)
    clip = CLIPModel(model_cfg=TINY_CLIP_CFG).eval()
    clip_ckpt = root / 'ckpt' / 'tiny_clip.pt'
    save_clip_checkpoint(clip_ckpt, clip, clip.clip_arch)
    with torch.no_grad():
        emb = clip.encode_class_names(list(SHAPE_CLASSES), templates='short')
    emb_path = root / 'data' / 'shapes' / 'shapes_tiny.npy'
    np.save(emb_path, emb.numpy())
    from ovdet.models.baron import attn12_prompt_embeddings

    attn12 = CLIPModel(pretrained=str(clip_ckpt)).eval()  # as the detector loads it
    with torch.no_grad():
        emb12 = attn12_prompt_embeddings(attn12, list(SHAPE_CLASSES), ['a photo of a {}.'])
    attn12_path = root / 'data' / 'shapes' / 'shapes_tiny_attn12.npy'
    np.save(attn12_path, emb12.numpy())
    return dict(root=root, clip_ckpt=clip_ckpt, embeddings=emb_path, attn12=attn12_path,
                val_img_dir=Path(paths['val_img_dir']), classes=list(SHAPE_CLASSES))
