"""Helpers for the CLIP tests: writing weights the way OpenAI's released files are written."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from tests.helpers import write_torchscript_state


def write_openai_archive(state_dict: Mapping[str, torch.Tensor], path: Path, input_resolution: int,
                         context_length: int, vocab_size: int, half: bool = True) -> Path:
    """Save ``state_dict`` the way OpenAI's released ``.pt`` files are: a TorchScript archive whose
    state dict carries OpenAI key names, fp16 weights and the extra ``input_resolution`` /
    ``context_length`` / ``vocab_size`` entries (and no ``attn_mask``)."""
    extra = dict(input_resolution=torch.tensor(input_resolution), context_length=torch.tensor(context_length),
                 vocab_size=torch.tensor(vocab_size))
    return write_torchscript_state(state_dict, path, extra, half=half)


def fp16_rounded(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp32 copies holding exactly the values an fp16 archive stores."""
    return {k: (v.half().float() if v.is_floating_point() else v.clone()) for k, v in state_dict.items()}
