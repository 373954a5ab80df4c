"""Helpers for the CLIP tests: writing weights the way OpenAI's released files are written."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


class _Node(nn.Module):
    """A parameter container whose nesting mirrors dotted key names (scriptable, forward unused)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def write_openai_archive(state_dict: Mapping[str, torch.Tensor], path: Path, input_resolution: int,
                         context_length: int, vocab_size: int, half: bool = True) -> Path:
    """Save ``state_dict`` the way OpenAI's released ``.pt`` files are: a TorchScript archive whose
    state dict carries OpenAI key names, fp16 weights and the extra ``input_resolution`` /
    ``context_length`` / ``vocab_size`` entries (and no ``attn_mask``)."""
    root = _Node()
    entries = dict(state_dict)
    entries.update(input_resolution=torch.tensor(input_resolution),
                   context_length=torch.tensor(context_length), vocab_size=torch.tensor(vocab_size))
    for key, value in entries.items():
        *parents, leaf = key.split('.')
        mod = root
        for name in parents:
            if name not in mod._modules:
                mod.add_module(name, _Node())
            mod = mod._modules[name]
        value = value.detach().clone()
        if half and value.is_floating_point():
            value = value.half()
        if value.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
        else:
            mod.register_buffer(leaf, value)
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def fp16_rounded(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp32 copies holding exactly the values an fp16 archive stores."""
    return {k: (v.half().float() if v.is_floating_point() else v.clone()) for k, v in state_dict.items()}
