"""``samples.jsonl``: a few completions of every N-th GRPO step with their per-term and total rewards.

``SampleLogger`` is a ``transformers.TrainerCallback``: the GRPO trainer hands it each generation batch after the
reward terms have scored it (``RecordsSamples._calculate_rewards``; the reward functions themselves stay pure), and
it writes at the end of the step (main process only), one JSON line per completion::

    {"step": 10, "id": "...", "problem": "...", "solution": "...", "completion": "...",
     "rewards": {"think_format": 1.0, ...}, "total": 3.0}

``step`` is the number of optimizer steps completed before the batch was generated (0 = the first batch);
``rewards`` has a term's value or ``None`` (a plug-in's "not judged"); ``total`` is the weighted sum of the judged
terms, what TRL turns into advantages.

    logger = SampleLogger("runs/x/samples.jsonl", every=10, count=8, weights={"think_format": 1.0, ...})
    trainer.add_callback(logger); trainer.sample_logger = logger
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback

from segzero.parsing import text_of
from segzero.train.processes import is_main_process


class SampleLogger(TrainerCallback):
    """Writes ``count`` completions of the batch generated at every ``every``-th step to ``path`` (JSONL);
    ``weights``: term name -> weight, in the order of the trainer's reward functions."""

    def __init__(self, path: str | Path, *, every: int, count: int, weights: dict[str, float]):
        self.path, self.every, self.count, self.weights = Path(path), every, count, dict(weights)
        self._pending: list[dict] = []
        self._written: set[int] = set()

    def wants(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step not in self._written and is_main_process()

    def observe(self, step: int, inputs: list[dict], completions: list, rewards: list[list[float]]) -> None:
        """One generation batch: its rows (dataset columns), completions and ``rewards[i][k]`` (completion ``i``,
        the ``k``-th term, NaN for "not judged"); kept for ``on_step_end`` when ``step`` is one to write."""
        if not self.wants(step):
            return
        names = list(self.weights)
        for row, completion, values in list(zip(inputs, completions, rewards, strict=False))[: self.count]:
            terms = {n: None if math.isnan(v) else float(v) for n, v in zip(names, values, strict=True)}
            total = sum(self.weights[n] * v for n, v in terms.items() if v is not None)
            self._pending.append(
                {
                    "step": step,
                    "id": row.get("id"),
                    "problem": row.get("problem"),
                    "solution": row.get("solution"),
                    "completion": text_of(completion),
                    "rewards": terms,
                    "total": total,
                }
            )
        self._written.add(step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._pending:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.writelines(json.dumps(row) + "\n" for row in self._pending)
            self._pending.clear()
        return control


class RecordsSamples:
    """Mixin for TRL's ``GRPOTrainer``: after the reward terms score a generation batch, hands the batch to
    ``self.sample_logger`` (a ``SampleLogger``; None = no sample file)."""

    sample_logger: SampleLogger | None = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.sample_logger is not None:  # gathered over processes in process order: ours come first on rank 0
            local = rewards[: len(inputs)].tolist()
            self.sample_logger.observe(self.state.global_step, inputs, completions, local)
        return rewards
