"""``CLIPSegModel``: transformers' CLIPSeg (``CLIPSegForImageSegmentation`` + its tokenizer and
preprocessing constants), loaded offline from a hub snapshot in ``ckpt/``, as a text-prompted dense
predictor: one logit map per prompt.

The image goes through CLIPSeg's CLIP vision encoder once per image; the light decoder then runs once per
prompt (upstream's ``forward`` would re-encode the image for every prompt). The result equals upstream's
``forward(input_ids, pixel_values)`` on the same inputs (tested).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from .checkpoint import CheckpointError
from .hub import CLIPSEG_FILES, TOKENIZER_FILES, find_entry, hub_snapshot, resolve_entry, set_offline_env  # noqa: F401

__all__ = ['CLIPSegModel', 'CLIPSEG_FILES']

# CIDAS/clipseg-rd64-refined's preprocessor_config.json values, used when a snapshot lacks that file.
_DEFAULT_PREPROCESS = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                           rescale_factor=1 / 255, size=dict(height=352, width=352))


def _snapshot(pretrained: str) -> Path:
    """A CLIPSeg snapshot folder from a folder, ``models--*`` cache, ``hf-hub:`` id, repo id or zoo name."""
    entry = find_entry(name=pretrained) or find_entry(path=pretrained) or \
        find_entry(hub_repo=pretrained.removeprefix('hf-hub:'))
    if entry is not None and not Path(pretrained).is_dir():
        return resolve_entry(entry)
    hint = entry.download if entry is not None else 'see ckpt/README.md'
    return hub_snapshot(pretrained, CLIPSEG_FILES, f'Get it: {hint}.')


@MODELS.register_module()
class CLIPSegModel(BaseModule):
    """CLIPSeg as a text-prompted segmenter.

    Args:
        pretrained: the hub snapshot (or ``models--CIDAS--clipseg-rd64-refined`` folder, ``hf-hub:`` id,
            zoo name ``'clipseg-rd64-refined'``).
        image_size: square side images are resized to (default: the snapshot's preprocessor size, 352;
            CLIPSeg's decoder needs a square patch grid).
        prompt_batch: prompts per decoder call.

    Attributes:
        model: the transformers ``CLIPSegForImageSegmentation`` (upstream key names).
        tokenizer: the snapshot's CLIP tokenizer.
        image_mean / image_std: (3,) preprocessing statistics on the 0-1 scale.
    """

    def __init__(self, pretrained: str, image_size: int | None = None, prompt_batch: int = 64,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        set_offline_env()
        from transformers import AutoTokenizer, CLIPSegForImageSegmentation

        folder = _snapshot(str(pretrained))
        try:
            self.model = CLIPSegForImageSegmentation.from_pretrained(str(folder), local_files_only=True).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except OSError as e:  # transformers reports unreadable / missing files as OSError
            raise CheckpointError(f"CLIPSeg snapshot '{folder}' could not be loaded ({e}). See ckpt/README.md.") from e
        pre = dict(_DEFAULT_PREPROCESS)
        if (folder / 'preprocessor_config.json').is_file():
            pre.update(json.loads((folder / 'preprocessor_config.json').read_text()))
        size = pre['size']
        self.image_size = int(image_size or (size.get('height', 352) if isinstance(size, dict) else size))
        self.register_buffer('image_mean', torch.tensor(pre['image_mean'], dtype=torch.float32), persistent=False)
        self.register_buffer('image_std', torch.tensor(pre['image_std'], dtype=torch.float32), persistent=False)
        self.rescale_factor = float(pre.get('rescale_factor', 1 / 255))
        self.prompt_batch = int(prompt_batch)
        self.pretrained = str(folder)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """CLIPSeg's input from pixel values: (B, 3, H, W) on the 0-255 scale -> (B, 3, S, S) resized
        (bilinear) and normalized with the snapshot's statistics."""
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode='bilinear',
                          align_corners=False) * self.rescale_factor
        return (x - self.image_mean.view(1, 3, 1, 1)) / self.image_std.view(1, 3, 1, 1)

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{'input_ids', 'attention_mask'}`` (N, L), padded to the longest prompt, on the model's device."""
        enc = self.tokenizer(list(prompts), padding=True, return_tensors='pt')
        device = self.image_mean.device
        return dict(input_ids=enc['input_ids'].to(device), attention_mask=enc['attention_mask'].to(device))

    @torch.no_grad()
    def prompt_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLIPSeg's conditional (text) embeddings, (N, P)."""
        tokens = self.tokenize(prompts)
        return self.model.get_conditional_embeddings(batch_size=len(prompts), **tokens)

    @torch.no_grad()
    def segment(self, pixel_values: torch.Tensor, prompts: Sequence[str] | None = None,
                conditional: torch.Tensor | None = None) -> torch.Tensor:
        """Logit maps, one per image and prompt.

        Args:
            pixel_values: (B, 3, S, S) from :meth:`preprocess`.
            prompts: N texts (or ``conditional``, their (N, P) :meth:`prompt_embeddings`).

        Returns:
            (B, N, S, S) mask logits (sigmoid: probability that the pixel shows the prompt).
        """
        if conditional is None:
            conditional = self.prompt_embeddings(prompts or [])
        vision = self.model.clip.vision_model(pixel_values=pixel_values, output_hidden_states=True,
                                              interpolate_pos_encoding=True)
        # hidden_states[0] is the embedding output: layer i is at i + 1 (as upstream indexes it).
        acts = [vision.hidden_states[i + 1] for i in self.model.extract_layers]
        out = []
        for b in range(pixel_values.shape[0]):
            maps = []
            for cond in conditional.split(self.prompt_batch):
                logits = self.model.decoder([a[b:b + 1].expand(len(cond), -1, -1) for a in acts], cond).logits
                maps.append(logits.reshape(len(cond), *logits.shape[-2:]))
            out.append(torch.cat(maps))
        return torch.stack(out)

    def forward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """(B, 3, H, W) pixel values (0-255) and N prompts -> (B, N, S, S) mask logits."""
        return self.segment(self.preprocess(images), prompts)
