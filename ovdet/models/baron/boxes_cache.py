"""BARON-KD's boxes cache: good KD boxes of an image remembered (in original-image coordinates) and
merged into its proposals the next time the image comes round."""
from __future__ import annotations

import torch
from mmengine import dist
from torch import Tensor, nn

from .sampling import nms_keep

__all__ = ['BoxesCache']


def to_frame(boxes: Tensor, meta: dict) -> Tensor:
    """Original-image boxes -> the augmented frame (resize by ``scale_factor``, then the flip)."""
    sx, sy = meta.get('scale_factor', (1.0, 1.0))
    out = boxes * boxes.new_tensor([sx, sy, sx, sy])
    if meta.get('flip', False):
        w = meta['img_shape'][1]
        out = torch.stack([w - out[:, 2], out[:, 1], w - out[:, 0], out[:, 3]], 1)
    return out


def to_original(boxes: Tensor, meta: dict) -> Tensor:
    """Inverse of :func:`to_frame`."""
    out = boxes
    if meta.get('flip', False):
        w = meta['img_shape'][1]
        out = torch.stack([w - out[:, 2], out[:, 1], w - out[:, 0], out[:, 3]], 1)
    sx, sy = meta.get('scale_factor', (1.0, 1.0))
    return out / out.new_tensor([sx, sy, sx, sy])


class BoxesCache(nn.Module):
    """Per image id, up to ``max_boxes`` (box, score) rows in original coordinates.

    :meth:`merge` is called once per KD image. It counts calls; from call ``start_calls`` on (the
    reference's ``start_iter`` counts calls, spec S1) it merges the cached boxes (moved into the
    frame) with the image's selected boxes (score > ``score_thr``, NMS ``nms_thr``) and stores the
    merged set back (original coordinates, score > ``score_thr``, NMS, top ``max_boxes``). The pending
    write-backs are all-gathered across processes by :meth:`sync` (one collective per step).

    Unlike the reference, the call count and the stored boxes are part of the model's state dict (one
    float64 tensor under ``<prefix>_extra_state``: row 0 ``[calls, rows, 0, 0, 0, 0]``, then one row
    ``[image id, x1, y1, x2, y2, score]`` per cached box), so ``--resume`` continues with the same cache;
    an uninterrupted run computes the same either way. Every process holds the same cache (the
    write-backs are all-gathered), so rank 0's copy in the checkpoint is every rank's.
    """

    def __init__(self, start_calls: int = 20000, score_thr: float = 0.85, nms_thr: float = 0.1,
                 max_boxes: int = 300) -> None:
        super().__init__()
        self.start_calls, self.score_thr, self.nms_thr, self.max_boxes = int(start_calls), score_thr, nms_thr, max_boxes
        self.calls = 0
        self.store: dict[int, Tensor] = {}
        self._pending: list[tuple[int, Tensor]] = []

    def merge(self, image_id: int, boxes: Tensor, scores: Tensor, meta: dict) -> tuple[Tensor, Tensor]:
        """Boxes (k, 4) / scores (k,) of one KD image in its frame -> the merged (k', 4), (k',)."""
        self.calls += 1
        if self.calls < self.start_calls:
            return boxes, scores
        cached = self.store.get(int(image_id))
        all_boxes, all_scores = boxes, scores
        if cached is not None and cached.numel():
            cached = cached.to(boxes.device)
            all_boxes = torch.cat([to_frame(cached[:, :4], meta), boxes])
            all_scores = torch.cat([cached[:, 4], scores])
        good = all_scores > self.score_thr
        if not good.any():
            return boxes, scores
        all_boxes, all_scores = all_boxes[good], all_scores[good]
        keep = nms_keep(all_boxes, all_scores, self.nms_thr)
        merged, merged_scores = all_boxes[keep], all_scores[keep]
        orig = to_original(merged, meta)
        keep = nms_keep(orig, merged_scores, self.nms_thr)[:self.max_boxes]
        self._pending.append((int(image_id), torch.cat([orig[keep], merged_scores[keep, None]], 1).cpu()))
        return merged, merged_scores

    def sync(self) -> None:
        """Write the step's merged boxes of every process into every process's cache."""
        if self.calls < self.start_calls:
            return  # every process counts the same calls, so all skip the collective together
        pending, self._pending = self._pending, []
        gathered = dist.all_gather_object(pending) if dist.get_world_size() > 1 else [pending]
        for part in gathered:
            for image_id, rows in part:
                self.store[image_id] = rows

    def get_extra_state(self) -> Tensor:
        rows = [torch.cat([r.new_full((r.shape[0], 1), float(i)), r], 1).double()
                for i, r in sorted(self.store.items())]
        body = torch.cat(rows) if rows else torch.zeros(0, 6, dtype=torch.float64)
        head = torch.tensor([[float(self.calls), float(body.shape[0]), 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
        return torch.cat([head, body])

    def set_extra_state(self, state: Tensor) -> None:
        if not torch.is_tensor(state) or state.ndim != 2 or state.shape[1] != 6 or state.shape[0] < 1 \
                or int(state[0, 1]) != state.shape[0] - 1:
            raise ValueError('boxes cache state in the checkpoint is malformed: expected a (1 + rows, 6) tensor '
                             f'[calls, rows, 0...; image id, box, score], got '
                             f'{tuple(state.shape) if torch.is_tensor(state) else type(state).__name__}')
        state = state.cpu()
        self.calls = int(state[0, 0])
        body = state[1:]
        self.store = {}
        for image_id in body[:, 0].unique().tolist():
            self.store[int(image_id)] = body[body[:, 0] == image_id, 1:].float()
        self._pending = []
