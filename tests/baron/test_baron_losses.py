"""InfoNCE and the feature queues against a hand computation."""
from __future__ import annotations

import math

import torch

from ovdet.models.baron import FeatureQueue, QueuedInfoNCE, info_nce


def _unit(rows):
    out = []
    for r in rows:
        n = math.sqrt(sum(v * v for v in r))
        out.append([v / n for v in r])
    return out


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _ce(logits, target):
    finite = [v for v in logits if v != -math.inf]
    m = max(finite)
    return -(logits[target] - m - math.log(sum(math.exp(v - m) for v in finite)))


def _hand_info_nce(s, t, target, temp, qt=(), qs=()):
    """Pure-Python reference (lists of floats)."""
    s, t = _unit(s), _unit(t)
    qt, qs = _unit(qt) if qt else [], _unit(qs) if qs else []
    cand_t = t + qt
    s2t = sum(_ce([temp * _dot(si, c) for c in cand_t], target[i]) for i, si in enumerate(s)) / len(s)
    cand_s = s + qs
    t2s = 0.0
    for i in range(len(s)):
        logits = []
        for j, c in enumerate(cand_s):
            if j < len(s) and j != i and target[j] == target[i]:
                logits.append(-math.inf)
            else:
                logits.append(temp * _dot(t[target[i]], c))
        t2s += _ce(logits, i)
    return 0.5 * (s2t + t2s / len(s))


S = [[1.0, 0.2, -0.3], [0.1, 0.9, 0.4], [0.5, -0.5, 0.7], [-0.2, 0.3, 1.0]]
T = [[0.8, 0.1, -0.1], [0.0, 1.0, 0.6], [0.3, -0.4, 0.9]]
TARGET = [0, 1, 1, 2]  # students 1 and 2 share teacher 1 (two orderings of one bag)


def test_info_nce_matches_hand_computation() -> None:
    got = info_nce(torch.tensor(S), torch.tensor(T), torch.tensor(TARGET), 30.0)
    assert abs(float(got) - _hand_info_nce(S, T, TARGET, 30.0)) < 1e-4
    qt, qs = [[0.2, 0.2, 0.9], [-1.0, 0.0, 0.1]], [[0.0, -1.0, 0.2]]
    got = info_nce(torch.tensor(S), torch.tensor(T), torch.tensor(TARGET), 5.0, torch.tensor(qt), torch.tensor(qs))
    assert abs(float(got) - _hand_info_nce(S, T, TARGET, 5.0, qt, qs)) < 1e-5
    # inputs are normalized inside: scaling changes nothing
    got2 = info_nce(3 * torch.tensor(S), 0.5 * torch.tensor(T), torch.tensor(TARGET), 5.0, torch.tensor(qt),
                    torch.tensor(qs))
    assert abs(float(got2) - float(got)) < 1e-5


def test_info_nce_empty_has_graph() -> None:
    s = torch.zeros(0, 3, requires_grad=True)
    loss = info_nce(s, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 30.0)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_feature_queue_fifo_and_wrap() -> None:
    q = FeatureQueue(4, 2)
    assert q.get().shape == (0, 2)
    q.push(torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
    assert q.get()[:, 0].tolist() == [1.0, 2.0, 3.0] and int(q.ptr) == 3
    q.push(torch.tensor([[4.0, 0.0], [5.0, 0.0]]))  # wraps: 5 overwrites 1
    assert int(q.count) == 4 and int(q.ptr) == 1
    assert q.get()[:, 0].tolist() == [5.0, 2.0, 3.0, 4.0]
    q.push(torch.arange(12.0).view(6, 2))  # more than the size: the last 4 are kept
    assert sorted(q.get()[:, 0].tolist()) == [4.0, 6.0, 8.0, 10.0]
    assert 'feats' in q.state_dict() and 'ptr' in q.state_dict()


def test_queued_loss_uses_previous_batches_and_updates() -> None:
    crit = QueuedInfoNCE(dim=3, queue_size=5, temperature=30.0, loss_weight=0.1)
    crit.train()
    s1, t1 = torch.tensor(S), torch.tensor(T)
    l1 = crit(s1, t1, torch.tensor(TARGET))
    assert abs(float(l1) - 0.1 * _hand_info_nce(S, T, TARGET, 30.0)) < 1e-5  # empty queues at first
    assert int(crit.teacher_queue.count) == 3 and int(crit.student_queue.count) == 4
    torch.testing.assert_close(crit.teacher_queue.get(), torch.nn.functional.normalize(t1, dim=-1))
    s2 = [[0.3, 0.3, 0.3], [1.0, -1.0, 0.0]]
    t2 = [[0.2, 0.5, 0.1], [0.9, -0.8, 0.3]]
    l2 = crit(torch.tensor(s2), torch.tensor(t2), torch.tensor([0, 1]))
    # second call: negatives = batch 1 (teacher queue: its 3 teachers; student queue: its 4 students)
    assert abs(float(l2) - 0.1 * _hand_info_nce(s2, t2, [0, 1], 30.0, T, S)) < 1e-5
    # queues after the second push: size 5 -> the student queue wrapped
    assert int(crit.teacher_queue.count) == 5 and int(crit.student_queue.count) == 5
    assert int(crit.student_queue.ptr) == 1
    torch.testing.assert_close(crit.student_queue.feats[0], torch.nn.functional.normalize(torch.tensor(s2[1]), dim=0))
    # eval mode: no queue update
    crit.eval()
    before = crit.teacher_queue.feats.clone()
    crit(torch.tensor(s2), torch.tensor(t2), torch.tensor([0, 1]))
    assert torch.equal(before, crit.teacher_queue.feats) and int(crit.teacher_queue.ptr) == 0
