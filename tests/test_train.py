"""Fast tests of the GRPO training package without running a model: config and recipes, data preparation and the
bad-row rule, reward wiring and the completions sample file, the verl adapter, and the synthetic shapes world.

Run: ``OMP_NUM_THREADS=1 pytest tests/test_train.py -x -q`` (the GRPO runs are in tests/test_train_grpo.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segzero import rewards
from segzero.errors import UserError
from segzero.prompts import format_prompt
from segzero.shapes.world import COLOURS, ShapesConfig, generate_rows, make_sample
from segzero.train.config import TrainConfig
from segzero.train.data import build_train_dataset, load_raw_dataset, prepare_row
from segzero.train.recipes import parse_overrides
from segzero.train.rewards import build_reward_functions, reward_term_names
from segzero.train.verl import compute_score, export_verl

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
GT = "<box>(10,20),(50,60)</box><points>(20,30),(40,50)</points>"
GOOD = (
    '<think>it is there</think><answer>{"bbox": [10, 20, 50, 60], "points_1": [20, 30], "points_2": [40, 50]}</answer>'
)


# ----------------------------------------------------------------------------- config and recipes
def test_every_recipe_parses_into_the_config():
    names = {p.name for p in RECIPES}
    assert {"segzero_7b.yaml", "segzero_3b.yaml", "visionreasoner_7b.yaml", "tiny_cpu.yaml"} <= names
    for path in RECIPES:
        cfg = TrainConfig.from_yaml(path)
        assert cfg.num_generations >= 2, path


@pytest.mark.parametrize("name", ["segzero_7b.yaml", "segzero_3b.yaml", "visionreasoner_7b.yaml"])
def test_paper_recipes_have_the_spec_hyperparameters(name):
    # the paper's recipe: 8 samples, T=1.0, 16 prompts, lr 1e-6, wd 1e-2, KL 5e-3, clip 1.0, bf16, grad checkpointing, 840.
    cfg = TrainConfig.from_yaml(ROOT / "recipes" / name)
    got = (cfg.num_generations, cfg.temperature, cfg.prompts_per_step, cfg.learning_rate, cfg.weight_decay)
    assert got == (8, 1.0, 16, 1e-6, 1e-2)
    assert (cfg.beta, cfg.max_grad_norm, cfg.bf16, cfg.gradient_checkpointing, cfg.frame) == (
        5e-3,
        1.0,
        True,
        True,
        840,
    )
    assert 1024 <= cfg.max_completion_length <= 2048
    assert cfg.gradient_accumulation_steps(world_size=8) * cfg.per_device_batch_size * 8 == 16 * 8
    assert cfg.reward_kind == ("visionreasoner" if name.startswith("vision") else "segzero")


@pytest.mark.parametrize("name", ["segzero_7b.yaml", "segzero_3b.yaml", "visionreasoner_7b.yaml"])
def test_paper_recipes_map_onto_trl_grpo_config(name, tmp_path):
    # use_cpu only because this machine has no GPU (bf16 needs one otherwise); the rest is the recipe as written
    from segzero.train.grpo_args import grpo_config

    cfg = TrainConfig.from_yaml(ROOT / "recipes" / name, overrides=["use_cpu=true"])
    weights = [1.0] * len(reward_term_names(cfg.reward_kind))
    args = grpo_config(cfg, tmp_path, reward_weights=weights)
    assert args.generation_batch_size == 16 * 8  # 16 prompts x 8 completions per optimizer step
    assert (args.num_generations, args.temperature, args.learning_rate, args.weight_decay) == (8, 1.0, 1e-6, 1e-2)
    assert (args.beta, args.max_grad_norm, args.bf16, args.gradient_checkpointing) == (5e-3, 1.0, True, True)
    assert (args.use_vllm, args.vllm_mode, args.save_only_model) == (True, "colocate", False)
    assert args.reward_weights == weights and args.remove_unused_columns is False


@pytest.mark.parametrize(
    "overrides, field, expected",
    [
        (["learning_rate=2e-6"], "learning_rate", 2e-6),  # YAML reads 2e-6 as a string: coerced for float fields
        (["lora=true"], "lora", True),  # booleans in YAML spelling
        (["reward_weights.box_iou=2"], "reward_weights", {"box_iou": 2}),  # dotted key sets one dict entry
        (["report_to=[tensorboard, wandb]"], "report_to", ["tensorboard", "wandb"]),  # lists
        (["max_samples=null"], "max_samples", None),  # null resets an optional field
    ],
)
def test_overrides_are_applied(overrides, field, expected):
    assert getattr(TrainConfig.from_yaml(None, overrides=overrides), field) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        ["no_such_field=1"],  # a typo must not fall back to a default silently
        ["learning_rate"],  # not key=value
        ["num_generations=many"],  # wrong type
        ["num_generations=1"],  # GRPO needs a group
        ["reward_kind=dice"],  # unknown reward set
        ["load_in_4bit=true"],  # QLoRA without LoRA
        ["reward_kind=visionreasoner", "prompt=qwen3vl", "frame=840"],  # relative answers, gt in 840 pixels
        ["vllm.mode=both"],  # TRL's two modes only
        ["vllm.port=1"],  # a small config's typo
    ],
)
def test_bad_overrides_are_user_errors(overrides):
    with pytest.raises(UserError):
        TrainConfig.from_yaml(None, overrides=overrides)


def test_dotted_override_updates_a_dict_from_yaml(tmp_path):
    # the recipe's other weights survive an override of one of them
    path = tmp_path / "r.yaml"
    path.write_text("reward_weights: {box_iou: 2.0, points: 0.5}\n")
    cfg = TrainConfig.from_yaml(path, overrides=["reward_weights.points=3"])
    assert cfg.reward_weights == {"box_iou": 2.0, "points": 3}
    assert parse_overrides(["a.b=1", "a.c=x"]) == {"a": {"b": 1, "c": "x"}}


def test_batch_arithmetic_rejects_indivisible_sizes():
    cfg = TrainConfig(prompts_per_step=3, num_generations=4, per_device_batch_size=8)
    with pytest.raises(UserError):
        cfg.gradient_accumulation_steps(1)


# ----------------------------------------------------------------------------- data
def _img(w: int, h: int) -> Image.Image:
    return Image.fromarray(np.full((h, w, 3), 128, np.uint8))


@pytest.mark.parametrize(
    "row, kind, reason, solution",
    [
        # already at the frame: gt kept
        ({"image": _img(100, 100), "problem": "The cup.", "solution": GT}, "segzero", "", GT),
        # 200 x 100 image: resized to 100 x 100, x halved, y unchanged
        (
            {"image": _img(200, 100), "problem": "cup", "solution": GT},
            "segzero",
            "",
            "<box>(5,20),(25,60)</box><points>(10,30),(20,50)</points>",
        ),
        # multi-object kind: gt re-serialised as a VisionReasoner JSON list (first point per object)
        (
            {"image": _img(100, 100), "problem": "cup", "solution": GT},
            "visionreasoner",
            "",
            '[{"bbox_2d": [10, 20, 50, 60], "point_2d": [20, 30]}]',
        ),
        ({"image": None, "problem": "cup", "solution": GT}, "segzero", "missing image", None),
        ({"image": _img(100, 100), "problem": "cup", "solution": "<box>oops"}, "segzero", "unparseable gt", None),
        ({"image": _img(40, 40), "problem": "cup", "solution": GT}, "segzero", "outside", None),  # gt out of image
        ({"image": _img(100, 100), "problem": "  ", "solution": GT}, "segzero", "query", None),  # empty query
    ],
)
def test_prepare_row_and_the_bad_row_rule(row, kind, reason, solution):
    out = prepare_row(row, kind=kind, prompt_kind="segzero", frame=100, tolerance=1.0)
    if reason:
        assert reason in out["skip_reason"]
        return
    assert out["skip_reason"] == ""
    assert out["solution"] == solution
    assert out["image"].size == (100, 100)
    (message,) = out["prompt"]
    assert message["content"] == [{"type": "image"}, {"type": "text", "text": format_prompt(row["problem"])}]


def test_synthetic_training_set_and_bad_rows_file(tmp_path):
    cfg = TrainConfig(dataset="synthetic", dataset_args={"samples": 6}, frame=112, max_samples=5)
    ds, bad = build_train_dataset(cfg, output_dir=tmp_path)
    assert len(ds) == 5 and bad == []
    assert set(ds.column_names) >= {"prompt", "image", "solution", "id", "problem"}
    assert ds[0]["image"].size == (112, 112)
    assert (tmp_path / "bad_rows.jsonl").read_text() == ""


@pytest.mark.parametrize("fmt", ["save_to_disk", "parquet"])
def test_disk_datasets_load_with_bad_rows_reported(tmp_path, fmt):
    import datasets

    rows = generate_rows(3, seed=1, size=56)
    rows[1]["solution"] = "<box>(1,2)</box>"  # unparseable gt
    ds = datasets.Dataset.from_list(rows)
    path = tmp_path / ("ds" if fmt == "save_to_disk" else "ds.parquet")
    ds.save_to_disk(str(path)) if fmt == "save_to_disk" else ds.to_parquet(str(path))
    assert load_raw_dataset(str(path))["id"] == [r["id"] for r in rows]
    cfg = TrainConfig(dataset=str(path), frame=56)
    prepared, bad = build_train_dataset(cfg, output_dir=tmp_path / "out")
    assert prepared["id"] == [rows[0]["id"], rows[2]["id"]]
    assert [b[0] for b in bad] == [rows[1]["id"]]
    logged = [json.loads(line) for line in (tmp_path / "out" / "bad_rows.jsonl").read_text().splitlines()]
    assert logged[0]["id"] == rows[1]["id"] and "unparseable gt" in logged[0]["reason"]


def test_unreachable_hub_dataset_is_a_user_error_naming_it(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="Ricky06662/refCOCOg_9k_840"):
        load_raw_dataset("Ricky06662/refCOCOg_9k_840")
    with pytest.raises(UserError, match="not found"):
        load_raw_dataset("./missing_dir")


# ----------------------------------------------------------------------------- rewards wiring
@pytest.mark.parametrize("kind", ["segzero", "visionreasoner"])
def test_one_reward_function_per_term_with_weights(kind):
    names = list(rewards.REWARDS[kind])
    funcs, weights = build_reward_functions(kind, weights={names[-1]: 2.5})
    assert [f.__name__ for f in funcs] == names == reward_term_names(kind)
    assert weights == [1.0] * (len(names) - 1) + [2.5]
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "nothing"}]]
    gt = GT if kind == "segzero" else '[{"bbox_2d": [10, 20, 50, 60], "point_2d": [20, 30]}]'
    for f, core in zip(funcs, rewards.REWARDS[kind].values(), strict=True):
        assert f(completions, [gt, gt]) == core(completions, [gt, gt])


def test_unknown_reward_weight_is_a_user_error():
    with pytest.raises(UserError, match="box_iou"):
        build_reward_functions("segzero", weights={"iou": 1.0})


def test_sample_logger_writes_every_n_steps_with_per_term_rewards(tmp_path):
    # the trainer hands each scored batch to the callback; it writes at the step's end, every `every` steps
    from segzero.train.samples import SampleLogger

    funcs, weights = build_reward_functions("segzero", weights={"box_iou": 2.0})
    names = [f.__name__ for f in funcs]
    logger = SampleLogger(tmp_path / "s.jsonl", every=2, count=1, weights=dict(zip(names, weights, strict=True)))
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "x"}]]
    inputs = [{"id": "a", "problem": "q", "solution": GT}, {"id": "b", "problem": "q", "solution": GT}]
    for step in (0, 1, 2):
        scored = [[f(completions, [GT, GT])[i] for f in funcs] for i in range(2)]
        logger.observe(step, inputs, completions, scored)
        logger.on_step_end(None, None, None)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2]  # step 1 skipped, one completion per sampled step
    assert rows[0]["rewards"] == {k: 1.0 for k in rewards.REWARDS["segzero"]}
    assert rows[0]["total"] == 6.0 and rows[0]["id"] == "a" and rows[0]["completion"] == GOOD
    assert rows[0]["solution"] == GT


def test_sample_logger_keeps_a_not_judged_term_as_null(tmp_path):
    # a plug-in's None reaches the trainer as NaN: written as null and left out of the total
    from segzero.train.samples import SampleLogger

    logger = SampleLogger(tmp_path / "s.jsonl", every=1, count=1, weights={"a": 1.0, "b": 3.0})
    logger.observe(0, [{"id": "r"}], ["c"], [[0.5, float("nan")]])
    logger.on_step_end(None, None, None)
    (row,) = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert row["rewards"] == {"a": 0.5, "b": None} and row["total"] == 0.5


# ----------------------------------------------------------------------------- verl adapter
VERL_TABLE = [
    ("segzero", GOOD, GT),  # perfect single-object answer: 5
    ("segzero", GOOD.replace("[10, 20, 50, 60]", "[11, 20, 50, 61]"), GT),  # box slightly off: still all terms
    ("segzero", GOOD.replace("[10, 20, 50, 60]", "[60, 70, 90, 99]"), GT),  # wrong box
    ("segzero", '{"bbox": [10, 20, 50, 60], "points_1": [20, 30], "points_2": [40, 50]}', GT),  # no tags
    ("segzero", "garbage", GT),  # nothing parseable
    (
        "visionreasoner",
        '<think>a</think><answer>[{"bbox_2d": [10,20,50,60], "point_2d": [20,30]}]</answer>',
        '[{"bbox_2d": [10, 20, 50, 60], "point_2d": [20, 30]}]',
    ),  # perfect multi-object answer
    ("visionreasoner", "<think>a</think><answer>[]</answer>", '[{"bbox_2d": [10, 20, 50, 60], "point_2d": [20, 30]}]'),
    ("visionreasoner", "<think>a</think><answer>[]</answer>", "[]"),  # correct "nothing here"
]


@pytest.mark.parametrize("kind, completion, gt", VERL_TABLE)
def test_verl_compute_score_equals_the_core_and_training_rewards(kind, completion, gt):
    core = rewards.score(kind, completion, gt)
    got = compute_score(kind, completion, gt, extra_info={"reward_kind": kind})
    assert got["score"] == core["total"]
    assert {k: v for k, v in got.items() if k != "score"} == {k: v for k, v in core.items() if k != "total"}
    funcs, weights = build_reward_functions(kind)  # the GRPO path sums the same terms
    assert sum(w * f([completion], [gt])[0] for f, w in zip(funcs, weights, strict=True)) == got["score"]
    assert compute_score(kind, completion, gt)["score"] == got["score"]  # kind read from data_source too


def test_export_verl_writes_the_vlm_parquet_layout(tmp_path):
    import pyarrow.parquet as pq

    rows = generate_rows(3, seed=2, size=56)
    rows[2]["image"] = None  # dropped by the bad-row rule
    info = export_verl(rows, tmp_path / "train.parquet", kind="segzero", frame=56)
    assert info["rows"] == 2 and [d[0] for d in info["dropped"]] == [rows[2]["id"]]
    table = pq.read_table(tmp_path / "train.parquet").to_pylist()
    first = table[0]
    assert first["data_source"] == "segzero" and first["ability"] == "segmentation"
    assert first["prompt"] == [{"role": "user", "content": "<image>" + format_prompt(rows[0]["problem"])}]
    assert len(first["images"]) == 1 and first["images"][0]["bytes"]
    assert first["reward_model"] == {"style": "rule", "ground_truth": rows[0]["solution"]}
    assert first["extra_info"]["id"] == rows[0]["id"] and first["extra_info"]["reward_kind"] == "segzero"


@pytest.mark.parametrize(
    ("prompt_kind", "prefix"),
    [
        ("segzero", "<image>Please find '"),  # Seg-Zero's training dataset: the image tag, then the prompt
        ("visionreasoner", '<image>\nPlease find "'),  # VisionReasoner's: the image tag and a newline
    ],
)
def test_verl_prompt_prefix_per_family(prompt_kind, prefix):
    from segzero.train.verl import _verl_row

    row = {"problem": "the cat", "image": None, "solution": "[]", "id": "r0"}
    content = _verl_row(row, 0, kind=prompt_kind, prompt_kind=prompt_kind, data_source="x", split="train")
    assert content["prompt"][0]["content"].startswith(prefix)


# ----------------------------------------------------------------------------- synthetic shapes world
def test_shapes_world_is_deterministic_and_gt_matches_the_mask():
    cfg = ShapesConfig(size=(96, 80))
    a, b, c = (
        make_sample(3, seed=7, config=cfg),
        make_sample(3, seed=7, config=cfg),
        make_sample(4, seed=7, config=cfg),
    )
    assert a["problem"] == b["problem"] and a["solution"] == b["solution"]
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert not np.array_equal(np.asarray(a["image"]), np.asarray(c["image"]))
    assert a["image"].size == (96, 80) and (a["img_width"], a["img_height"]) == (96, 80)
    for i in range(20):
        s = make_sample(i, seed=0, config=cfg)
        ys, xs = np.nonzero(s["mask"])
        nums = [int(v) for v in s["solution"].replace("(", ",").replace(")", ",").split(",") if v.strip().isdigit()]
        assert nums[:4] == [xs.min(), ys.min(), xs.max(), ys.max()]  # box = exact mask extent
        for px, py in (nums[4:6], nums[6:8]):
            assert s["mask"][py, px]  # both points on the target


def test_colour_kind_queries_name_exactly_one_shape():
    # independent check: "the <colour> <kind>" must match exactly one drawn shape, and it is the target
    seen = 0
    for i in range(40):
        s = make_sample(i, seed=3)
        words = s["problem"].split()
        if len(words) == 3 and words[1] in COLOURS:
            matches = [sh for sh in s["shapes"] if (sh["colour"], sh["kind"]) == (words[1], words[2])]
            assert len(matches) == 1
            rgb = np.asarray(s["image"])[s["mask"]]
            assert (rgb == COLOURS[words[1]]).all()
            seen += 1
    assert seen > 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (("activation_checkpointing", "gradient_checkpointing"), "activation_checkpointing"),  # transformers 5
        (("gradient_checkpointing",), "gradient_checkpointing"),  # transformers 4 (what [vllm] may resolve)
    ],
)
def test_checkpointing_argument_follows_the_installed_name(fields, expected):
    import dataclasses

    from segzero.train.compat import checkpointing_argument

    config_class = dataclasses.make_dataclass("Args", [(f, bool, dataclasses.field(default=False)) for f in fields])
    assert checkpointing_argument(config_class) == expected


def test_installed_grpo_config_takes_the_checkpointing_setting(tmp_path):
    from trl import GRPOConfig

    from segzero.train.compat import checkpointing_argument
    from segzero.train.grpo_args import grpo_config

    name = checkpointing_argument(GRPOConfig)
    import dataclasses

    assert name in {f.name for f in dataclasses.fields(GRPOConfig)}  # a real field of this TRL
    weights = [1.0] * len(reward_term_names("segzero"))
    for on in (True, False):
        cfg = TrainConfig.from_yaml(ROOT / "recipes/tiny_cpu.yaml", overrides=[f"gradient_checkpointing={on}"])
        assert (
            getattr(grpo_config(cfg, tmp_path, reward_weights=weights), name) is on
        )  # the recipe setting reaches the installed name


def test_training_processor_renders_the_processor_template_not_the_tokenizer_one(tiny_models):
    # a released Qwen2.5-VL folder carries a tool-calling template in tokenizer_config.json that cannot render an
    # image message; the processor's own template (chat_template.json / .jinja) is the one to use
    from segzero.models.processor import ImageOnlyProcessor
    from segzero.train.processing import TrlProcessor

    inner = ImageOnlyProcessor.from_pretrained(tiny_models["reasoner"])
    inner.tokenizer.chat_template = "{{ raise_exception('the tokenizer template was used') }}"
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "the cup"}]}]
    text = TrlProcessor(inner).apply_chat_template(conversation, add_generation_prompt=True)
    assert text == inner.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert "the cup" in text
