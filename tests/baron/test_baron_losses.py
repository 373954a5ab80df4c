"""Masked InfoNCE, the queues, the single-region box ids and the positional code against hand computations."""
from __future__ import annotations

import math

import torch

from ovdet.models.baron import FeatureQueue, QueuedInfoNCE, masked_info_nce, single_region_box_ids, sine_box_code


def _unit(rows):
    return [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in rows]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _ce(logits, target):
    finite = [v for v in logits if v != -math.inf]
    m = max(finite)
    return -(logits[target] - m - math.log(sum(math.exp(v - m) for v in finite)))


def _hand(a, b, temp, same, ids=None, qb=(), qb_ids=(), qa=(), qa_ids=()):
    """Pure-Python reference: 0.5 CE(T a.[b; Qb], diag) + 0.5 CE(T b.[a; Qa], diag)."""
    a, b = _unit(a), _unit(b)
    qa, qb = (_unit(q) if q else [] for q in (qa, qb))

    def direction(x, y, q, qid):
        total = 0.0
        for i, xi in enumerate(x):
            logits = [-math.inf if (j != i and same[i][j]) else temp * _dot(xi, yj) for j, yj in enumerate(y)]
            logits += [-math.inf if ids is not None and qid[k] == ids[i] else temp * _dot(xi, qk)
                       for k, qk in enumerate(q)]
            total += _ce(logits, i)
        return total / len(x)

    return 0.5 * direction(a, b, qb, qb_ids) + 0.5 * direction(b, a, qa, qa_ids)


A = [[1.0, 0.2, -0.3], [0.1, 0.9, 0.4], [0.5, -0.5, 0.7], [-0.2, 0.3, 1.0]]
B = [[0.8, 0.1, -0.1], [0.0, 1.0, 0.6], [0.1, 0.8, 0.5], [0.3, -0.4, 0.9]]
GROUP = [0, 1, 1, 2]  # rows 1 and 2: two orderings of one group -> not negatives of each other
SAME = [[GROUP[i] == GROUP[j] for j in range(4)] for i in range(4)]


def test_masked_info_nce_matches_hand_computation() -> None:
    mask = torch.tensor(SAME)
    got = masked_info_nce(torch.tensor(A), torch.tensor(B), 30.0, mask)
    assert abs(float(got) - _hand(A, B, 30.0, SAME)) < 1e-4
    no_mask = [[False] * 4 for _ in range(4)]
    assert abs(float(masked_info_nce(torch.tensor(A), torch.tensor(B), 30.0)) - _hand(A, B, 30.0, no_mask)) < 1e-4
    assert abs(_hand(A, B, 5.0, SAME) - _hand(A, B, 5.0, no_mask)) > 1e-3  # the mask matters
    # queues: rows from the anchor's own image are masked
    ids = [7.0, 7.0, 8.0, 9.0]
    qb, qb_ids = [[0.2, 0.2, 0.9], [-1.0, 0.0, 0.1], [0.3, 0.3, 0.3]], [8.0, 5.0, 7.0]
    qa, qa_ids = [[0.0, -1.0, 0.2]], [9.0]
    got = masked_info_nce(torch.tensor(A), torch.tensor(B), 5.0, mask, torch.tensor(ids),
                          (torch.tensor(qb), torch.tensor(qb_ids)), (torch.tensor(qa), torch.tensor(qa_ids)))
    assert abs(float(got) - _hand(A, B, 5.0, SAME, ids, qb, qb_ids, qa, qa_ids)) < 1e-5


def test_queued_loss_uses_previous_rows_then_pushes_with_ids() -> None:
    crit = QueuedInfoNCE(dim=3, queue_size=5, temperature=30.0, loss_weight=0.1).train()
    ids1 = torch.tensor([1.0, 1.0, 2.0, 3.0])
    l1 = crit(torch.tensor(A), torch.tensor(B), ids1, torch.tensor(SAME))
    assert abs(float(l1) - 0.1 * _hand(A, B, 30.0, SAME)) < 1e-5  # empty queues at first
    feats, qids = crit.teacher_queue.get()
    torch.testing.assert_close(feats, torch.nn.functional.normalize(torch.tensor(B), dim=-1))
    assert qids.tolist() == ids1.tolist()
    a2, b2 = [[0.3, 0.3, 0.3], [1.0, -1.0, 0.0]], [[0.2, 0.5, 0.1], [0.9, -0.8, 0.3]]
    ids2 = [2.0, 4.0]
    l2 = crit(torch.tensor(a2), torch.tensor(b2), torch.tensor(ids2))
    same2 = [[False, False], [False, False]]
    hand = _hand(a2, b2, 30.0, same2, ids2, B, ids1.tolist(), A, ids1.tolist())
    assert abs(float(l2) - 0.1 * hand) < 1e-5
    assert int(crit.student_queue.count) == 5 and int(crit.student_queue.ptr) == 1  # wrapped
    # push=False (the reference when single_weight == 0, spec S3) and eval mode leave the queues alone
    before = crit.teacher_queue.feats.clone()
    crit(torch.tensor(a2), torch.tensor(b2), torch.tensor(ids2), push=False)
    crit.eval()
    crit(torch.tensor(a2), torch.tensor(b2), torch.tensor(ids2))
    assert torch.equal(before, crit.teacher_queue.feats)


def test_feature_queue_fifo() -> None:
    q = FeatureQueue(3, 1)
    q.push(torch.tensor([[1.0], [2.0]]), torch.tensor([10.0, 20.0]))
    q.push(torch.tensor([[3.0], [4.0]]), torch.tensor([30.0, 40.0]))  # 4 overwrites 1
    feats, ids = q.get()
    assert feats.flatten().tolist() == [4.0, 2.0, 3.0] and ids.tolist() == [40.0, 20.0, 30.0]


def test_single_region_box_ids_reference_doubling_and_exact() -> None:
    # proposals 0, 1, 2 with cells {4, 5}, {3, 4}, {4}
    props = torch.tensor([0, 0, 1, 1, 2])
    cells = torch.tensor([4, 5, 3, 4, 4])
    # start 0: ids 4, 5 -> start = 0 + 5 + 1 = 6; ids 9, 10 -> start = 6 + 10 + 1 = 17; id 21
    assert single_region_box_ids(props, cells, 'reference').tolist() == [4.0, 5.0, 9.0, 10.0, 21.0]
    assert single_region_box_ids(props, cells, 'exact').tolist() == [4, 5, 12, 13, 22]
    # float32: once start passes 2^24, distinct boxes (proposal, cell) of 30 proposals get equal ids
    props = torch.arange(30).repeat_interleave(3)
    cells = torch.tensor([3, 4, 5]).repeat(30)
    ref = single_region_box_ids(props, cells, 'reference')
    assert len(set(ref[:60].tolist())) == 60  # the first 20 proposals are still distinct
    assert len(set(ref.tolist())) < 90
    assert len(set(single_region_box_ids(props, cells, 'exact').tolist())) == 90


def _group(cells, n_orders, proposal):
    from ovdet.models.baron import BagGroup

    boxes = torch.zeros(len(cells), 4)
    return BagGroup(boxes=boxes, cells=torch.tensor(cells), spanned=torch.zeros(4), norm_boxes=boxes,
                    orders=[list(range(len(cells)))] * n_orders, proposal=proposal)


def test_bag_sequence_ids_reference_digit_strings_and_exact() -> None:
    from ovdet.models.baron import bag_sequence_ids, group_digit_id

    assert group_digit_id([0, 4, 5]) == 540 and group_digit_id([4]) == 4 and group_digit_id([4, 8, 1]) == 841
    # image 0: proposal 0 has groups {4, 5} (2 orderings) and {4} (1); proposal 1 has {3, 4, 7} (2)
    # image 1: proposal 0 has {4} (1)
    groups = [[_group([4, 5], 2, 0), _group([4], 1, 0), _group([3, 4, 7], 2, 1)], [_group([4], 1, 0)]]
    # image 0: 54, 54, 4; start = 54 + 1 = 55; 743 + 55 = 798 (x2); image max 798 -> batch start 799
    # image 1: 4 + 799 = 803
    assert bag_sequence_ids(groups, 'reference').tolist() == [54.0, 54.0, 4.0, 798.0, 798.0, 803.0]
    assert bag_sequence_ids(groups, 'exact').tolist() == [0, 0, 1, 2, 2, 3]
    # float32 collisions: 40 proposals of groups {4, 5, 8} and {4, 5, 6, 8}; each proposal adds 8654 + 1
    # to the offset, so the digit ids 854 and 8654 of a proposal stay apart, but groups {0, 4} (40)
    # and {1, 4} (41) of a later proposal become equal once the offset passes 2**24
    big = [[g for p in range(2000) for g in (_group([4, 5, 6, 8], 1, p), _group([0, 4], 1, p),
                                             _group([1, 4], 1, p))]]
    ref = bag_sequence_ids(big, 'reference')
    exact_ids = []
    start = 0
    for _ in range(2000):
        exact_ids += [8654 + start, 40 + start, 41 + start]
        start += 8655
    # by hand: the exact integers rounded to float32 (spacing 2 from 2**24 on, so some 40 + start and
    # 41 + start of one proposal round to one float)
    hand = torch.tensor(exact_ids, dtype=torch.float64).float()
    assert torch.equal(ref, hand)
    assert ref[1] != ref[2]  # early proposals: distinct
    collide = (ref[1::3] == ref[2::3]).nonzero().flatten()
    assert len(collide) > 0 and collide.min() * 8655 > 2 ** 24 - 8655
    ex = bag_sequence_ids(big, 'exact')
    assert (ex[:, None] == ex[None]).sum().item() == len(ex)


def test_sine_box_code_by_hand() -> None:
    box = torch.tensor([[0.1, 0.2, 0.5, 0.9]])  # cx 0.3, cy 0.55, w 0.4, h 0.7
    code = sine_box_code(box)
    assert code.shape == (1, 512)
    for coord, x in enumerate((0.3, 0.55, 0.4, 0.7)):
        for k in (0, 1, 2, 63, 64, 127):
            angle = 2 * math.pi * x * 1.2 ** (k // 2 - 32)
            want = math.sin(angle) if k % 2 == 0 else math.cos(angle)
            # float32 angles: the error grows with the angle (up to ~530 rad here)
            assert abs(float(code[0, coord * 128 + k]) - want) < 1e-5 + 4e-6 * angle, (coord, k)
