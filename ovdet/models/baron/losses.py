"""BARON-KD's symmetric InfoNCE with per-process feature queues (rows: feature | image id)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['FeatureQueue', 'masked_info_nce', 'QueuedInfoNCE']


class FeatureQueue(nn.Module):
    """A FIFO of the most recent ``size`` (feature, image id) rows (no gradients, never synced).

    Buffers (saved in checkpoints): ``feats`` (size, dim), ``ids`` (size,) float image ids, ``ptr``
    (next write slot), ``count`` (filled slots).
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size, self.dim = int(size), int(dim)
        self.register_buffer('feats', torch.zeros(self.size, self.dim))
        self.register_buffer('ids', torch.full((self.size,), -1.0))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))
        self.register_buffer('count', torch.zeros((), dtype=torch.long))

    def get(self) -> tuple[Tensor, Tensor]:
        """``(feats (count, dim), ids (count,))``, the filled rows."""
        n = int(self.count)
        return self.feats[:n], self.ids[:n]

    @torch.no_grad()
    def push(self, feats: Tensor, ids: Tensor) -> None:
        """Append (n, dim) rows with their (n,) image ids, overwriting the oldest when full."""
        if self.size == 0 or feats.numel() == 0:
            return
        feats = feats.detach().to(self.feats)[-self.size:]
        ids = ids.detach().to(self.ids)[-self.size:]
        n = feats.shape[0]
        idx = (int(self.ptr) + torch.arange(n, device=self.feats.device)) % self.size
        self.feats[idx] = feats
        self.ids[idx] = ids
        self.ptr.fill_((int(self.ptr) + n) % self.size)
        self.count.fill_(min(self.size, int(self.count) + n))


def masked_info_nce(a: Tensor, b: Tensor, temperature: float, pair_mask: Tensor | None = None,
                    ids: Tensor | None = None, queue_b: tuple[Tensor, Tensor] | None = None,
                    queue_a: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``0.5 * CE(T a.[b; Qb]^T, diag) + 0.5 * CE(T b.[a; Qa]^T, diag)`` with masked candidates.

    Args:
        a, b: (N, D) paired embeddings (row i of a is the positive of row i of b), normalized here.
        pair_mask: (N, N) bool, True where an in-batch pair is not a negative (set to -inf); the
            diagonal is never masked.
        ids: (N,) image ids; queue rows with the same image id as the anchor are set to -inf.
        queue_b / queue_a: ``(feats (Q, D), ids (Q,))`` extra candidates for the a->b / b->a direction.

    Returns:
        scalar (0 with a graph when N == 0).
    """
    n = a.shape[0]
    if n == 0:
        return a.sum() * 0.0 + b.sum() * 0.0
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    mask = torch.zeros(n, n, dtype=torch.bool, device=a.device) if pair_mask is None else pair_mask & ~eye
    target = torch.arange(n, device=a.device)

    def direction(x: Tensor, y: Tensor, m: Tensor, queue: tuple[Tensor, Tensor] | None) -> Tensor:
        cand, full = y, m
        if queue is not None and queue[0].shape[0]:
            q, qid = queue
            cand = torch.cat([y, F.normalize(q.float(), dim=-1)])
            qmask = (ids[:, None].float() == qid[None].float()) if ids is not None else \
                torch.zeros(n, q.shape[0], dtype=torch.bool, device=a.device)
            full = torch.cat([m, qmask], 1)
        logits = (temperature * x @ cand.t()).masked_fill(full, float('-inf'))
        return F.cross_entropy(logits, target)

    return 0.5 * direction(a, b, mask, queue_b) + 0.5 * direction(b, a, mask.t(), queue_a)


class QueuedInfoNCE(nn.Module):
    """:func:`masked_info_nce` between student ``a`` and teacher ``b`` with a queue for each.

    Each call uses the queues as they were, then (in training, when ``push``) appends this batch's
    detached, normalized rows with their image ids.

    Args:
        dim: D. queue_size: rows per queue (1024). temperature: 30 (bags) / 50 (single regions).
        loss_weight: multiplier of the returned loss.
    """

    def __init__(self, dim: int, queue_size: int = 1024, temperature: float = 30.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.student_queue = FeatureQueue(queue_size, dim)
        self.teacher_queue = FeatureQueue(queue_size, dim)

    def forward(self, student: Tensor, teacher: Tensor, ids: Tensor, pair_mask: Tensor | None = None,
                push: bool = True) -> Tensor:
        loss = masked_info_nce(student, teacher, self.temperature, pair_mask, ids, self.teacher_queue.get(),
                               self.student_queue.get())
        if self.training and push:
            self.student_queue.push(F.normalize(student.detach().float(), dim=-1), ids)
            self.teacher_queue.push(F.normalize(teacher.detach().float(), dim=-1), ids)
        return self.loss_weight * loss
