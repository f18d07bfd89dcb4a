"""An example reward plug-in for ``segzero train --reward examples/my_reward.py:compute_score``.

EasyR1's convention: one completion and its gt in, a float (or a dict of named floats, or None) out. This one
rewards a completion whose answer box is no larger than a quarter of the gt box's area away from it, a "size
agreement" term that the paper's IoU threshold does not give on its own.
"""

from segzero.geometry import box_area
from segzero.parsing import parse_answer, parse_solution


def compute_score(completion: str, solution) -> float | None:
    """1.0 when the answer's box area is within 25% of the gt box's, else 0.0; None when the gt has no box."""
    (gt, *_) = parse_solution(solution) or (None,)
    answer = parse_answer(completion)
    if gt is None or gt.box is None:
        return None
    if not answer.ok or not answer.objects or answer.objects[0].box is None:
        return 0.0
    want, got = box_area(gt.box), box_area(answer.objects[0].box)
    return float(abs(got - want) <= 0.25 * max(want, 1.0))
