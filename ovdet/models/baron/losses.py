"""Feature queues and the InfoNCE loss that aligns student (detector) embeddings with CLIP teacher
embeddings, for bags of regions and for single regions."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['FeatureQueue', 'info_nce', 'QueuedInfoNCE']


class FeatureQueue(nn.Module):
    """A FIFO ring buffer of the most recent ``size`` feature vectors (no gradients).

    Buffers (saved in checkpoints): ``feats`` (size, dim), ``ptr`` (next write slot), ``count``
    (filled slots, <= size).
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 0:
            raise ValueError('queue size must be >= 0')
        self.size = int(size)
        self.register_buffer('feats', torch.zeros(self.size, dim))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))
        self.register_buffer('count', torch.zeros((), dtype=torch.long))

    def get(self) -> Tensor:
        """(count, dim) the stored features (oldest-first order is not guaranteed)."""
        return self.feats[:int(self.count)]

    @torch.no_grad()
    def push(self, feats: Tensor) -> None:
        """Append (n, dim) features, overwriting the oldest when full (only the last ``size`` of
        ``feats`` are kept if n > size)."""
        if self.size == 0 or feats.numel() == 0:
            return
        feats = feats.detach().to(self.feats)[-self.size:]
        n = feats.shape[0]
        idx = (int(self.ptr) + torch.arange(n, device=self.feats.device)) % self.size
        self.feats[idx] = feats
        self.ptr.fill_((int(self.ptr) + n) % self.size)
        self.count.fill_(min(self.size, int(self.count) + n))


def info_nce(student: Tensor, teacher: Tensor, target: Tensor, temperature: float,
             teacher_queue: Tensor | None = None, student_queue: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between S student embeddings and G teacher embeddings.

    Student i's positive is teacher ``target[i]``; several students may share one teacher (the
    orderings of one bag). Both sides are L2-normalized here.

    - student -> teacher: ``CE(T * s_i . [t; Q_t]^T, target_i)``, averaged over i;
    - teacher -> student: for each i, ``CE(T * t_{target_i} . [s; Q_s]^T, i)`` where the other
      students with the same teacher are removed from the candidates (they are not negatives);
    - loss = mean of the two directions. A missing / empty queue adds no negatives.

    Args:
        student: (S, D). teacher: (G, D). target: (S,) long in [0, G).
        temperature: logit scale T (30 for bags, 50 for single regions).
        teacher_queue: (Kt, D) extra teacher negatives. student_queue: (Ks, D) extra student negatives.

    Returns:
        scalar loss (0 with a graph when S == 0).
    """
    if student.shape[0] == 0:
        return student.sum() * 0.0
    s = F.normalize(student.float(), dim=-1)
    t = F.normalize(teacher.float(), dim=-1)
    target = target.long()
    tq = t if teacher_queue is None or teacher_queue.numel() == 0 else \
        torch.cat([t, F.normalize(teacher_queue.float(), dim=-1)])
    loss_s2t = F.cross_entropy(temperature * s @ tq.t(), target)
    sq = s if student_queue is None or student_queue.numel() == 0 else \
        torch.cat([s, F.normalize(student_queue.float(), dim=-1)])
    logits = temperature * t[target] @ sq.t()
    n = s.shape[0]
    same = target[:, None] == target[None, :]
    same &= ~torch.eye(n, dtype=torch.bool, device=s.device)
    if sq.shape[0] > n:
        same = torch.cat([same, same.new_zeros(n, sq.shape[0] - n)], dim=1)
    logits = logits.masked_fill(same, float('-inf'))
    loss_t2s = F.cross_entropy(logits, torch.arange(n, device=s.device))
    return 0.5 * (loss_s2t + loss_t2s)


class QueuedInfoNCE(nn.Module):
    """:func:`info_nce` with a teacher queue and a student queue of ``queue_size`` each.

    Each call computes the loss against the queues as they were, then pushes this batch's (detached,
    normalized) teacher and student embeddings. Queues are per process (not gathered over ranks).

    Args:
        dim: embedding dimension D. queue_size: per feature type (1024 in the reference).
        temperature: logit scale. loss_weight: multiplier of the returned loss.
    """

    def __init__(self, dim: int, queue_size: int = 1024, temperature: float = 30.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.teacher_queue = FeatureQueue(queue_size, dim)
        self.student_queue = FeatureQueue(queue_size, dim)

    def forward(self, student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
        loss = info_nce(student, teacher, target, self.temperature, self.teacher_queue.get(),
                        self.student_queue.get())
        if self.training:
            self.teacher_queue.push(F.normalize(teacher.detach().float(), dim=-1))
            self.student_queue.push(F.normalize(student.detach().float(), dim=-1))
        return self.loss_weight * loss
