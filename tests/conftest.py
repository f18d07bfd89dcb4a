"""Shared pytest fixtures.

``tiny_models`` (session scope): builds the tiny offline reasoner and segmenter once per test session with
``segzero.models.tiny.build_tiny_models`` and returns ``{"reasoner": Path, "segmenter": Path}``. Load them with the
real code paths, e.g. ``Reasoner.from_pretrained(tiny_models["reasoner"], frame=56)`` and
``Segmenter.from_pretrained(tiny_models["segmenter"])``.

``tiny_answering_models`` (session scope, built only when a test asks for it, about 2 minutes on 2 CPU cores):
the same segmenter and a tiny reasoner taught to answer ``segzero.models.tiny.teach.TAUGHT_ANSWER`` (a parseable
Seg-Zero answer in a 56 x 56 frame) to any image and query at frames of 28-112 px, for tests of the full
reason -> parse -> SAM path.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of the tiny random-weight models saved to disk (built once per session, a few seconds)."""
    from segzero.models.tiny import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_answering_models(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``tiny_models`` with the reasoner replaced by one that always answers ``TAUGHT_ANSWER``."""
    from segzero.models.tiny.reasoner import build_answering_reasoner

    reasoner = build_answering_reasoner(tmp_path_factory.mktemp("tiny_answering") / "reasoner")
    return {"reasoner": reasoner, "segmenter": tiny_models["segmenter"]}


@pytest.fixture
def shapes_smoke():
    """``shapes_smoke(recipe)``: overrides of a shapes recipe for a seconds-long run (2 warm-up steps, 1 answer
    step, 1 GRPO step), each stage field set only for a stage the recipe has."""
    from segzero.train.config import TrainConfig

    def overrides(recipe) -> list[str]:
        kinds = {k.name for k, _ in TrainConfig.from_yaml(recipe).stage_list()}
        return SMOKE + [o for kind, o in SMOKE_STAGES if kind in kinds]

    return overrides


SMOKE = [
    "max_steps=1",
    "dataset_args.samples=4",
    "num_generations=2",
    "prompts_per_step=2",
    "per_device_batch_size=4",
    "max_completion_length=8",
    "save_steps=1",
    "sample_every=0",
]
SMOKE_STAGES = [
    ("perception_warmup", "stages.perception_warmup={steps: 2, batch_size: 2, cosine_steps: null}"),
    ("answer_sft", "stages.answer_sft={steps: 1, batch_size: 2}"),
]
