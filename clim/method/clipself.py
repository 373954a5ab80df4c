"""CLIPSelf: self-distillation of a CLIP's dense map towards its own crop embeddings (Wu et al., ICLR 2024).

No text, no labels (clipself.md): the student's v2 dense map of the full image, pooled over boxes
(RoIAlign 1x1), is pulled towards the image embedding a frozen copy of the original CLIP gives the
same boxes cropped out of the image; loss ``cosine_weight * (1 - mean cosine)`` over every box of the
rank's batch.

Where the teacher lives: it is a copy of the CLIP taken at construction (before any training), held
*outside* the module tree. So it is in no ``state_dict`` (MMEngine checkpoints do not store a second
CLIP), in no optimizer parameter group and in no DDP bucket; it follows ``.to()`` / ``.cuda()`` /
``.half()`` of the model and stays in eval mode. A resumed run rebuilds it from the same config (the
file ``clip.pretrained``, or the seed for random weights); the checkpoints carry ``teacher_digest``
(sha256 of the teacher's tensors) and loading a checkpoint whose digest differs is an error, so a
changed file can not silently become another teacher. The original weights the export ensembles with
are stored once per checkpoint by :class:`~clim.method.CLIPExportHook` (its trainable tensors only).
"""
from __future__ import annotations

import copy
import hashlib
from typing import Any

import torch

from mmdet.registry import MODELS

from .base import ContrastiveCLIPBase
from .data_preprocessor import CLIMDataPreprocessor

__all__ = ['CLIPSelf', 'CLIPSelfDataPreprocessor', 'cosine_distill_loss', 'tensors_digest']


def cosine_distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``1 - mean_i cos(student_i, teacher_i)``; inputs (N, D) L2-normalized, N >= 1. Returns a scalar."""
    if student.shape != teacher.shape or student.shape[0] == 0:
        raise ValueError(f'student and teacher features must be the same non-empty (N, D), got '
                         f'{tuple(student.shape)} and {tuple(teacher.shape)}')
    return 1.0 - (student * teacher).sum(dim=-1).mean()


def tensors_digest(module: torch.nn.Module) -> torch.Tensor:
    """(32,) uint8 sha256 over the names, shapes, dtypes and bytes of every tensor of ``module``'s state dict."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f'{name}:{tuple(t.shape)}:{t.dtype};'.encode())
        h.update(t.view(torch.uint8).numpy())  # the buffer itself, no copy
    return torch.frombuffer(bytearray(h.digest()), dtype=torch.uint8).clone()


@MODELS.register_module()
class CLIPSelfDataPreprocessor(CLIMDataPreprocessor):
    """:class:`CLIMDataPreprocessor` that also normalizes the teacher's crops.

    Input samples may carry ``crops`` uint8 (k, 3, c, c) (``PackCLIPSelfInputs``); each gains
    ``crop_inputs`` float32 (k, 3, c, c), CLIP mean/std normalized on the device (letterbox pads, 0
    before normalization, are not 0 after it, as in the reference). ``inputs`` as the parent.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        out = super().forward(data, training)
        for s in out['data_samples'] or []:
            if 'crops' in s:
                if s.crops.dtype != torch.uint8:
                    raise TypeError(f'crops must be uint8 images (PackCLIPSelfInputs), got {s.crops.dtype}')
                s.crop_inputs = (s.crops.float() - self.mean) / self.std
        return out


@MODELS.register_module()
class CLIPSelf(ContrastiveCLIPBase):
    """CLIPSelf refinement of a CLIP image encoder.

    Args:
        clip: ``CLIPModel`` config (ViT image tower). The student trains; the teacher is a frozen copy
            taken here (see the module docstring for how it is (not) saved).
        unlocked_groups: trailing image-tower groups left trainable (:meth:`CLIPModel.image_groups`:
            [patch embed + class token + ln_pre], [pos embed], one per block). Reference: every block
            (12 for B/16, 24 for L/14); patch embed, class token, pos embed, ln_post and proj stay frozen.
            The text tower and ``logit_scale`` (unused here) are frozen.
        cosine_weight: loss weight (reference 1.0).
        dense_mode: the student's dense extraction, ``'v2'`` (reference) or ``'plain'``.
        grad_checkpointing / region_eval: see :class:`ContrastiveCLIPBase` (``mode='predict'`` runs the
            same region recognition as CLIM's val loop).
        data_preprocessor: default :class:`CLIPSelfDataPreprocessor`.

    Inputs (``mode='loss'``): ``inputs`` (B, 3, S, S) normalized full images; ``data_samples`` each with
    ``boxes`` (k_i, 4) normalized x1y1x2y2 and ``crop_inputs`` (k_i, 3, c, c) normalized crops at the
    CLIP's input size. Output ``{'loss_cosine': ()}``. ``mode='tensor'``: ``(student (N, D), teacher
    (N, D))`` L2-normalized, N = sum k_i.
    """

    def __init__(self, clip: dict, unlocked_groups: int = 12, cosine_weight: float = 1.0,
                 dense_mode: str = 'v2', grad_checkpointing: bool = False, region_eval: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if dense_mode not in ('v2', 'plain'):
            raise ValueError(f"dense_mode must be 'v2' or 'plain', got {dense_mode!r}")
        super().__init__(clip=clip, grad_checkpointing=grad_checkpointing, region_eval=region_eval,
                         data_preprocessor=data_preprocessor or dict(type='CLIPSelfDataPreprocessor'),
                         init_cfg=init_cfg)
        if not self.clip.is_vit:
            raise NotImplementedError('CLIPSelf needs a ViT image tower (its dense map is the v2 ViT path)')
        teacher = copy.deepcopy(self.clip).eval()
        teacher.requires_grad_(False)
        # A one-element list keeps the teacher out of the module tree (state dict, optimizer, DDP).
        self._teacher_holder = [teacher]
        self.register_buffer('teacher_digest', tensors_digest(teacher))
        self._register_load_state_dict_pre_hook(self._check_teacher_digest)
        self.cosine_weight = float(cosine_weight)
        self.dense_mode = dense_mode
        self.unlocked_groups = int(unlocked_groups)
        self.clip.lock_image_tower(self.unlocked_groups)
        self.clip.lock_text_tower()
        self.clip.logit_scale.requires_grad_(False)
        self.train(self.training)

    @property
    def teacher(self) -> torch.nn.Module:
        """The frozen original CLIP (a ``CLIPModel`` in eval mode, no parameter requires grad)."""
        return self._teacher_holder[0]

    def held_modules(self) -> list[torch.nn.Module]:
        """Modules outside the module tree that the data-parallel wrapper broadcasts from rank 0
        (:class:`~clim.engine.GradSyncDataParallel`): the teacher, so every rank distils towards one."""
        return [self.teacher]

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cuda() / .half() reach the teacher too, although it is not a submodule.
        super()._apply(fn, *args, **kwargs)
        holder = getattr(self, '_teacher_holder', None)
        if holder:
            holder[0]._apply(fn, *args, **kwargs)
        return self

    def _check_teacher_digest(self, state_dict: dict, prefix: str, *args: Any) -> None:
        key = prefix + 'teacher_digest'
        if key in state_dict and not torch.equal(state_dict[key].cpu(), self.teacher_digest.cpu()):
            raise RuntimeError(
                f'this checkpoint was trained against another teacher than the one built now from '
                f'clip.pretrained={self.teacher.pretrained!r} (the teacher is not stored in checkpoints, '
                f'only its sha256): point model.clip.pretrained at the original file of that run')

    # ------------------------------------------------------------------------------------------
    def distill_features(self, images: torch.Tensor, data_samples: list) -> tuple[torch.Tensor, torch.Tensor]:
        """``(student, teacher)``, both (N, D) float32 L2-normalized, rows in sample-then-box order."""
        boxes = [s.boxes.to(images.device).float() for s in data_samples]
        crops = [s.crop_inputs for s in data_samples]
        for i, (b, c) in enumerate(zip(boxes, crops)):
            if b.shape[0] != c.shape[0]:
                raise ValueError(f'sample {i} has {b.shape[0]} boxes but {c.shape[0]} crops')
        student = self.clip.region_features(images, boxes, normalized=True, mode=self.dense_mode).float()
        with torch.no_grad():
            teacher = self.teacher.encode_image(torch.cat(crops).to(images.device, images.dtype),
                                                normalize=True).float()
        return student, teacher

    def loss(self, inputs: torch.Tensor, data_samples: list) -> dict[str, torch.Tensor]:
        student, teacher = self.distill_features(inputs, data_samples)
        return dict(loss_cosine=self.cosine_weight * cosine_distill_loss(student, teacher))

    def forward(self, inputs: torch.Tensor, data_samples: list | None = None, mode: str = 'loss') -> Any:
        if mode == 'tensor':
            return self.distill_features(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)
