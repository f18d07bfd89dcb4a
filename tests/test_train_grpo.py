"""GRPO end to end on CPU with the tiny models: steps run and learn, every reward term is logged, checkpoints (written
whole or not at all) and ``--resume`` (same data order, a partial checkpoint skipped, a changed config refused
unless allowed), the final folder loads in ``Reasoner`` / ``SegZeroPipeline`` / ``segzero segment``,
LoRA merged into the final weights, and the ``segzero train --config recipes/tiny_cpu.yaml`` interface.

A random tiny model never writes ``<think>..</think><answer>..</answer>``, so every reward is 0, every GRPO
advantage is 0 and nothing would be learned. The ``warm_reasoner`` fixture therefore first fits the tiny model
for a few supervised steps on one formatted answer (a format warm-up, as a real from-scratch recipe needs), so
sampled completions sometimes match the format and sometimes not: the rewards vary within a group and the
policy gradient is non-zero. Run: ``OMP_NUM_THREADS=1 pytest tests/test_train_grpo.py -x -q``
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest

from segzero.train.config import TrainConfig
from segzero.train.rewards import reward_term_names

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
FRAME = 112
WARM_TARGET = "<think>x</think><answer>{}</answer>"  # earns the think-format reward
WARM_STEPS = 120  # enough that both targets are written exactly, parting only at their branch token
COLD_TARGET = "<think>x</think>"  # the same start, then stops: no <answer>, earns nothing


def _config(model: Path | str, **overrides) -> TrainConfig:
    base = [f"model={model}", "weight_decay=0", "max_steps=3", "save_steps=2", "sample_every=1", "report_to=[none]"]
    return TrainConfig.from_yaml(
        ROOT / "recipes" / "tiny_cpu.yaml", overrides=base + [f"{k}={v}" for k, v in overrides.items()]
    )


def _state_dict(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def warm_reasoner(tiny_models, tmp_path_factory) -> Path:
    """The tiny reasoner after a few supervised steps on a 50/50 mixture of a formatted and an unformatted answer.

    Trained on the first training prompts, half the targets ``WARM_TARGET`` and half ``COLD_TARGET``: the two
    share their start and part at one token (``<answer>`` or the end), so sampling at temperature 1 goes either
    way there and the format reward varies inside GRPO groups (a real learning signal) by construction rather
    than by sampling luck.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from segzero.models.processor import load_processor
    from segzero.prompts import build_messages
    from segzero.shapes.world import ShapesConfig, generate_rows

    out = tmp_path_factory.mktemp("warm_reasoner")
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_models["reasoner"], dtype=torch.float32)
    proc = load_processor(tiny_models["reasoner"])
    proc.tokenizer.padding_side = "left"
    rows = generate_rows(4, seed=0, config=ShapesConfig(size=FRAME))  # the tiny_cpu recipe's first prompts
    prompts = [
        proc.apply_chat_template(build_messages(r["image"], r["problem"]), add_generation_prompt=True, tokenize=False)
        for r in rows
    ]
    images = [r["image"] for r in rows] * 2
    texts = [p + WARM_TARGET + "<|im_end|>" for p in prompts] + [p + COLD_TARGET + "<|im_end|>" for p in prompts]
    enc = proc(text=texts, images=images, padding=True, return_tensors="pt")
    labels = enc["input_ids"].clone()
    for i, text in enumerate(texts):  # left padding: the completion is each row's last n tokens
        n = len(proc.tokenizer(text[len(prompts[i % len(prompts)]) :], add_special_tokens=False)["input_ids"])
        labels[i, : labels.shape[1] - n] = -100
    labels[enc["attention_mask"] == 0] = -100
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(WARM_STEPS):
        model(**enc, labels=labels).loss.backward()
        optim.step()
        optim.zero_grad()
    model.save_pretrained(out)
    proc.tokenizer.save_pretrained(out)
    shutil.copy2(Path(tiny_models["reasoner"]) / "preprocessor_config.json", out)  # the image settings are unchanged
    return out


@pytest.fixture(scope="module")
def run(warm_reasoner, tmp_path_factory) -> dict:
    from segzero.train.trainer import train

    out = tmp_path_factory.mktemp("grpo_run")
    result = train(_config(warm_reasoner), out)
    return {**result, "out": out}


def test_steps_run_and_every_reward_term_is_logged(run):
    steps = [h for h in run["log_history"] if "loss" in h]
    assert run["global_step"] == 3 and len(steps) == 3
    for entry in steps:
        for term in reward_term_names("segzero"):
            assert f"rewards/{term}/mean" in entry and f"rewards/{term}/std" in entry
    # the 50/50 warm-up makes the format term vary inside groups: a real learning signal
    assert max(h["reward_std"] for h in steps) > 0
    assert max(h["grad_norm"] for h in steps) > 0


def test_parameters_change(run, warm_reasoner):
    # weight decay is 0, so any change comes from the GRPO gradient
    before, after = _state_dict(warm_reasoner), _state_dict(run["final"])
    assert before.keys() == after.keys()
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert any("layers" in k for k in changed)


def test_samples_and_tensorboard_free_run_files(run):
    rows = [json.loads(line) for line in (run["out"] / "samples.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [0, 1, 2]
    assert set(rows[0]["rewards"]) == set(reward_term_names("segzero"))
    assert (run["out"] / "config.yaml").exists() and (run["out"] / "bad_rows.jsonl").exists()


def test_checkpoint_has_optimizer_state_and_resume_keeps_the_data_order(run, tmp_path, caplog):
    from segzero.train.checkpoints import checkpoint_problems

    ckpt = run["out"] / "checkpoint-2"
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "model.safetensors"):
        assert (ckpt / name).exists(), name
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 2
    # every save was completed and renamed into place: no staging folder left, both checkpoints whole
    assert not list(run["out"].glob("tmp-*"))
    assert [checkpoint_problems(run["out"] / f"checkpoint-{n}") for n in (2, 3)] == [[], []]

    from segzero.train.trainer import train

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run["out"], resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoint-3")  # pretend the run stopped after step 2 ...
    partial = resumed_dir / "checkpoint-999"  # ... leaving a save cut short by a kill (no weights, no state)
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    (resumed_dir / "samples.jsonl").unlink()
    caplog.set_level(logging.INFO, logger="segzero.train")
    result = train(_config(_model_of(run)), resumed_dir, resume=True)
    assert result["resumed_from"].name == "checkpoint-2" and result["global_step"] == 3
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming from")]
    assert line.startswith("resuming from checkpoint-2") and "skipped incomplete checkpoint-999" in line
    assert (resumed_dir / "incomplete-checkpoint-999").is_dir() and not partial.exists()  # set aside, not deleted
    assert checkpoint_problems(resumed_dir / "checkpoint-3") == []
    assert not (resumed_dir / "config.resumed-1.yaml").exists()  # the same config: nothing to record
    # steps 1-2 come from the checkpoint's trainer state, step 3 was trained again
    assert [h["step"] for h in result["log_history"] if "loss" in h] == [1, 2, 3]

    def ids_at(path: Path, step: int) -> list:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [r["id"] for r in rows if r["step"] == step]

    assert ids_at(resumed_dir / "samples.jsonl", 2) == ids_at(run["out"] / "samples.jsonl", 2)


def _model_of(run) -> str:
    return TrainConfig.from_yaml(run["out"] / "config.yaml").model


def test_resume_restores_the_checkpoint_weights(run, warm_reasoner, tmp_path):
    # resumed at step 2 with the checkpoint's weights, optimizer, RNG and data order, step 3 ends where the
    # uninterrupted run ended (a resume that kept the starting weights would end elsewhere)
    import torch

    from segzero.train.trainer import train

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run["out"], resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoint-3")
    shutil.rmtree(resumed_dir / "final")
    result = train(_config(_model_of(run)), resumed_dir, resume=True)
    assert result["resumed_from"].name == "checkpoint-2" and result["global_step"] == 3
    start, once, resumed = (_state_dict(p) for p in (warm_reasoner, run["final"], result["final"]))
    assert any(not torch.allclose(start[k], once[k], atol=1e-6) for k in once)  # training moved the weights
    assert once.keys() == resumed.keys()
    assert all(torch.allclose(once[k], resumed[k], atol=1e-6) for k in once)


def test_a_save_killed_midway_leaves_no_checkpoint_folder(warm_reasoner, tmp_path, monkeypatch):
    # the second save dies after the weights and the optimizer are written (as a kill would stop it)
    from transformers import Trainer

    from segzero.train.checkpoints import checkpoint_problems, pick_checkpoint
    from segzero.train.trainer import train

    class Killed(BaseException):  # like a kill: nothing in the Trainer catches it
        pass

    original, saves = Trainer._save_rng_state, []

    def dies_on_second_save(self, output_dir):
        saves.append(output_dir)
        if len(saves) == 2:
            raise Killed("killed during the save")
        return original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", dies_on_second_save)
    with pytest.raises(Killed):
        train(_config(warm_reasoner, max_steps=2, save_steps=1, sample_every=0), tmp_path)
    assert Path(saves[1]).parent.name == "tmp-checkpoint-2"  # written in the staging folder
    assert (tmp_path / "tmp-checkpoint-2" / "checkpoint-2" / "optimizer.pt").exists()
    assert not (tmp_path / "checkpoint-2").exists()  # never renamed into place
    assert checkpoint_problems(tmp_path / "checkpoint-1") == []
    assert pick_checkpoint(tmp_path).path == tmp_path / "checkpoint-1"


def test_resume_with_a_changed_learning_rate_goes_on_only_when_allowed(run, tmp_path):
    from segzero.errors import UserError
    from segzero.train.trainer import train

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run["out"], resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoint-3")
    saved = (resumed_dir / "config.yaml").read_bytes()
    cfg = _config(_model_of(run), learning_rate=0.5)
    with pytest.raises(UserError, match="learning_rate"):
        train(cfg, resumed_dir, resume=True)
    result = train(cfg, resumed_dir, resume=True, allow_changed_config=True)
    assert result["resumed_from"].name == "checkpoint-2" and result["global_step"] == 3
    assert (resumed_dir / "config.yaml").read_bytes() == saved  # the first start's config is kept
    recorded = (resumed_dir / "config.resumed-1.yaml").read_text()
    assert recorded.startswith("# resumed from checkpoint-2 with changed learning_rate")
    assert TrainConfig.from_yaml(resumed_dir / "config.resumed-1.yaml").learning_rate == 0.5


def test_final_folder_loads_in_reasoner_and_pipeline(run, tiny_models):
    from segzero.models.reasoner import Reasoner
    from segzero.pipeline import SegZeroPipeline
    from segzero.shapes.world import ShapesConfig, make_sample

    sample = make_sample(1, config=ShapesConfig(size=160))
    reasoner = Reasoner.from_pretrained(run["final"], frame=FRAME, max_new_tokens=8)
    assert len(reasoner.generate([sample["image"]], [sample["problem"]])) == 1
    pipe = SegZeroPipeline.from_pretrained(
        reasoner=run["final"], segmenter=tiny_models["segmenter"], frame=FRAME, max_new_tokens=8
    )
    result = pipe(sample["image"], sample["problem"])
    assert result.mask.shape == (160, 160)


def test_lora_is_merged_into_the_final_weights(warm_reasoner, tmp_path):
    from segzero.train.trainer import train

    cfg = _config(warm_reasoner, lora="true", lora_r=4, lora_alpha=8, max_steps=2, save_steps=10, sample_every=0)
    result = train(cfg, tmp_path)
    final = result["final"]
    assert (final / "adapter" / "adapter_config.json").exists()
    before, after = _state_dict(warm_reasoner), _state_dict(final)
    assert before.keys() == after.keys()  # a plain model again: no lora_A / lora_B tensors
    assert any(not (before[k] == after[k]).all() for k in before if "q_proj" in k)


def test_cli_tiny_cpu_recipe_then_segment(tmp_path):
    # the interface outside checks use, with the recipe exactly as committed
    from segzero.cli.main import main
    from segzero.shapes.world import ShapesConfig, make_sample

    out = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "recipes" / "tiny_cpu.yaml"), "--output-dir", str(out)]) == 0
    assert (out / "final" / "config.json").exists() and (out / "final" / "tokenizer.json").exists()
    assert json.loads((out / "final" / "segzero.json").read_text())["frame"] == 112
    assert list((out / "runs").rglob("events.out.tfevents.*"))  # TensorBoard by default
    image = tmp_path / "shapes.png"
    make_sample(0, config=ShapesConfig(size=200))["image"].save(image)
    argv = ["segment", "--image", str(image), "--query", "the red circle", "--reasoner", str(out / "final")]
    # no --frame, no --segmenter (as the interface reads): final/segzero.json names both
    argv += ["--max-new-tokens", "8"]
    assert main([*argv, "--out", str(tmp_path / "seg")]) == 0
    result = json.loads((tmp_path / "seg" / "result.json").read_text())
    assert result["answer"]["frame"] == [112, 112]
    assert Path(result["segmenter"]).resolve() == (out / "tiny_models" / "segmenter").resolve()


def test_multi_object_reward_set_runs_and_logs_its_terms(warm_reasoner, tmp_path):
    # reward_kind selects the VisionReasoner terms, prompt and gt layout (synthetic gt re-serialised as a JSON list)
    from segzero.train.trainer import train

    cfg = _config(warm_reasoner, reward_kind="visionreasoner", max_steps=1, save_steps=10)
    result = train(cfg, tmp_path)
    (entry,) = [h for h in result["log_history"] if "loss" in h]
    assert {f"rewards/{t}/mean" for t in reward_term_names("visionreasoner")} <= set(entry)
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["solution"].startswith("[{") and set(rows[0]["rewards"]) == set(reward_term_names("visionreasoner"))


HUGE = "1" + "0" * 400
# answers a sampled completion can write: a 400-digit integer, and coordinates whose squares overflow a float
OVERFLOWING = [
    f'<think>x</think><answer>[{{"bbox_2d": [10, 10, {HUGE}, 20], "point_2d": [1, 1]}}]</answer>',
    '<think>x</think><answer>[{"bbox_2d": [1e308, -1e308, 1e308, 1e308], "point_2d": [1e308, 1e308]}]</answer>',
]


def test_a_completion_with_overflowing_numbers_does_not_stop_the_step(warm_reasoner, tmp_path, monkeypatch):
    # the first completions of the step are replaced before the rewards read them (the reward path GRPO runs)
    from trl import GRPOTrainer

    from segzero.train.trainer import train

    original = GRPOTrainer._calculate_rewards
    seen = []

    def with_overflow(self, inputs, prompts, completions, completion_ids_list):
        completions = list(completions)
        for i, text in enumerate(OVERFLOWING):
            c = completions[i]
            completions[i] = [{**c[0], "content": text}] if isinstance(c, list) else text
        seen.append(len(completions))
        return original(self, inputs, prompts, completions, completion_ids_list)

    monkeypatch.setattr(GRPOTrainer, "_calculate_rewards", with_overflow)
    cfg = _config(warm_reasoner, reward_kind="visionreasoner", max_steps=1, save_steps=10, sample_every=0)
    result = train(cfg, tmp_path)
    assert seen and result["global_step"] == 1
    (entry,) = [h for h in result["log_history"] if "loss" in h]
    assert math.isfinite(entry["loss"]) and all(
        math.isfinite(entry[f"rewards/{t}/mean"]) for t in reward_term_names("visionreasoner")
    )


@pytest.mark.parametrize(
    ("variant", "terms"),
    [
        ("mask", ["think_format", "answer_format", "mask_iou"]),  # the accuracy terms replaced by the mask's IoU
        ("mask_mix", [*reward_term_names("segzero"), "mask_iou"]),  # the paper's five and the mask's IoU
    ],
)
def test_mask_reward_variants_run_with_the_segmenter_in_the_loop(warm_reasoner, tmp_path, variant, terms):
    from segzero.train.trainer import train

    cfg = _config(warm_reasoner, reward_variant=variant, reward_segmenter="color", max_steps=1, save_steps=10)
    result = train(cfg, tmp_path)
    (entry,) = [h for h in result["log_history"] if "loss" in h]
    assert {f"rewards/{t}/mean" for t in terms} <= set(entry)
    assert "rewards/box_iou/mean" in entry if variant == "mask_mix" else "rewards/box_iou/mean" not in entry
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert set(rows[0]["rewards"]) == set(terms) and all(0.0 <= r["rewards"]["mask_iou"] <= 1.0 for r in rows)
