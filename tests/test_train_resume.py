"""Fast tests of ``segzero train --resume`` bookkeeping without running a model: which checkpoint folders count as
complete, which one a resume picks and what it reports, and the refusal of a resume whose config changed.
The GRPO runs that save, kill and resume for real are in tests/test_train_grpo.py.
Run: ``pytest tests/test_train_resume.py -x -q``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from segzero.cli.main import main
from segzero.errors import UserError
from segzero.train.checkpoints import checkpoint_problems, pick_checkpoint, set_aside
from segzero.train.config import RESUME_NEUTRAL_FIELDS, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny_cpu.yaml"
COMPLETE = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth")


def make_checkpoint(path: Path, files=COMPLETE, *, dirs=(), step: int = 1) -> Path:
    """A checkpoint folder with ``files`` (``trainer_state.json`` holds ``global_step``) and empty ``dirs``."""
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text(json.dumps({"global_step": step}) if name == "trainer_state.json" else "x")
    for name in dirs:
        (path / name).mkdir()
    return path


# (files, folders, save_only_model, the parts reported missing); the oracle is the list of what was left out
CHECKPOINT_CASES = [
    (COMPLETE, (), False, []),  # everything a resume loads
    (("config.json",), (), False, ["trainer state", "model weights", "optimizer state", "scheduler state"]),  # killed
    (tuple(f for f in COMPLETE if f != "trainer_state.json"), (), False, ["trainer state"]),  # killed before the state
    (tuple(f for f in COMPLETE if f != "optimizer.pt"), (), False, ["optimizer state"]),  # killed after the weights
    (tuple(f for f in COMPLETE if f != "scheduler.pt"), (), False, ["scheduler state"]),
    (("trainer_state.json", "model.safetensors"), (), True, []),  # save_only_model: no optimizer expected
    (("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt"), (), False, []),  # LoRA
    (("trainer_state.json",), ("global_step4",), False, []),  # DeepSpeed ZeRO-3: all in its global_step folder
    (("trainer_state.json", "scheduler.pt"), ("pytorch_model_fsdp_0", "optimizer_0"), False, []),  # FSDP sharded
]


@pytest.mark.parametrize(("files", "dirs", "save_only_model", "missing"), CHECKPOINT_CASES)
def test_checkpoint_problems_name_the_missing_parts(tmp_path, files, dirs, save_only_model, missing):
    path = make_checkpoint(tmp_path / "checkpoint-4", files, dirs=dirs)
    assert checkpoint_problems(path, optimizer=not save_only_model) == missing


def test_unreadable_trainer_state_is_incomplete(tmp_path):
    path = make_checkpoint(tmp_path / "checkpoint-4")
    (path / "trainer_state.json").write_text('{"global_st')  # cut off mid-write
    assert checkpoint_problems(path) == ["trainer state"]


def test_pick_takes_the_newest_complete_checkpoint_and_names_the_skipped(tmp_path):
    make_checkpoint(tmp_path / "checkpoint-2")
    make_checkpoint(tmp_path / "checkpoint-10")  # numeric order, not text order: 10 > 2
    make_checkpoint(tmp_path / "checkpoint-999", ("config.json",))  # a save cut short
    (tmp_path / "tmp-checkpoint-12" / "checkpoint-12").mkdir(parents=True)  # an unfinished atomic save
    choice = pick_checkpoint(tmp_path)
    assert choice.path == tmp_path / "checkpoint-10"
    assert [p.name for p, _ in choice.skipped] == ["checkpoint-999"]
    line = choice.describe()
    assert len(line.splitlines()) == 1
    assert line.startswith("resuming from checkpoint-10") and "skipped incomplete checkpoint-999" in line
    assert "tmp-checkpoint-12" in line
    set_aside(choice)
    # the partial folder is kept for inspection under another name; the unfinished save is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "incomplete-checkpoint-999"]
    assert pick_checkpoint(tmp_path).skipped == []


# (the override on resume, the fields the refusal must name; [] = accepted)
RESUME_CHANGES = [
    ([], []),  # the same recipe
    (["learning_rate=0.5"], ["learning_rate"]),  # optimizer setting
    (["per_device_batch_size=4"], ["per_device_batch_size"]),  # batch
    (["reward_kind=visionreasoner"], ["reward_kind"]),  # what is rewarded
    (["frame=56"], ["frame"]),  # what the model sees
    (["max_steps=5"], ["max_steps"]),  # how long it trains (and the schedule)
    (["learning_rate=0.5", "seed=1"], ["learning_rate", "seed"]),  # both named, in field order
    (["logging_steps=5", "report_to=[none]", "save_total_limit=1", "sample_every=0"], []),  # bookkeeping only
]


@pytest.mark.parametrize(("overrides", "named"), RESUME_CHANGES)
def test_resume_refuses_a_changed_training_config(tmp_path, overrides, named):
    from segzero.train.trainer import check_resume_config

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TrainConfig.from_yaml(RECIPE).to_dict(), sort_keys=False))
    cfg = TrainConfig.from_yaml(RECIPE, overrides=overrides)
    if named:
        with pytest.raises(UserError) as err:
            check_resume_config(cfg, tmp_path)
        listed = str(err.value).split(" with other ", 1)[1].split(" (see ", 1)[0].split(", ")
        assert listed == named
        assert "--allow-changed-config" in str(err.value)
        # the explicit flag goes on and reports every changed field
        assert check_resume_config(cfg, tmp_path, allow_changed=True) == named
    else:
        changed = check_resume_config(cfg, tmp_path)
        assert set(changed) <= set(RESUME_NEUTRAL_FIELDS)


def test_saved_config_without_a_newer_field_counts_as_its_default(tmp_path):
    # a config.yaml written before a field existed: the field is compared as its default, not as a change
    saved = TrainConfig.from_yaml(RECIPE).to_dict()
    del saved["reward_variant"]
    assert TrainConfig.from_yaml(RECIPE).changed_fields(saved) == []
    assert TrainConfig.from_yaml(RECIPE, overrides=["reward_variant=soft"]).changed_fields(saved) == ["reward_variant"]


def _train_cli(out: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(RECIPE), "--output-dir", str(out), *extra]


def test_cli_changed_learning_rate_exits_2_and_keeps_config_yaml(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    saved = yaml.safe_dump(TrainConfig.from_yaml(RECIPE).to_dict(), sort_keys=False)
    (out / "config.yaml").write_text(saved)
    make_checkpoint(out / "checkpoint-2")
    assert main(_train_cli(out, "--resume", "--set", "learning_rate=0.5")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "learning_rate" in err and "Traceback" not in err
    assert (out / "config.yaml").read_text() == saved  # a refused resume writes nothing
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-2", "config.yaml"]


def test_cli_resume_without_a_complete_checkpoint_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    make_checkpoint(out / "checkpoint-999", ("config.json",))
    assert main(_train_cli(out, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no complete checkpoint-N" in err and "checkpoint-999" in err and "Traceback" not in err


def test_cli_allow_changed_config_needs_resume(tmp_path, capsys):
    assert main(_train_cli(tmp_path / "run", "--allow-changed-config")) == 2
    assert "--resume" in capsys.readouterr().err


def test_cli_help_documents_the_resume_flags(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--allow-changed-config" in text and "newest complete checkpoint-N" in text
    # config fields' help is prose, printed as written (a percent sign would not be read as an argparse placeholder)
    from segzero.train.config import TrainConfig

    helps = {f.name: f.metadata["help"] for f in __import__("dataclasses").fields(TrainConfig)}
    assert " ".join(helps["stages"].split()) in text and " ".join(helps["reward_plugins"].split()) in text
    assert text.index("--model V") < text.index("--num-generations V") < text.index("--stages V")  # Seg-Zero's first
