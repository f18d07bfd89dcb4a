"""``TrainConfig``: every knob of ``segzero train``, loadable from YAML with ``--set key=value`` overrides.

A recipe (``recipes/*.yaml``) is a flat mapping of ``TrainConfig`` fields; unknown keys are an error (a typo
must not silently fall back to a default). ``grpo_args`` passes any further ``trl.GRPOConfig`` argument
through unchanged. Usage::

    from segzero.train.config import TrainConfig
    cfg = TrainConfig.from_yaml("recipes/segzero_7b.yaml", overrides=["learning_rate=2e-6", "lora=true"])
    print(cfg.describe())            # every field with its value and help

Batch arithmetic (the paper's 16 prompts x 8 generations per step): TRL counts completions, not prompts.
``prompts_per_step * num_generations`` completions are generated per optimizer step; each process handles
``per_device_batch_size`` completions per forward/backward, and ``gradient_accumulation_steps`` is derived
so that ``per_device_batch_size * world_size * gradient_accumulation_steps == prompts_per_step * num_generations``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segzero.answer import KINDS
from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME
from segzero.prompts import PROMPT_KINDS
from segzero.train.perception import CHOICES, DRILL_LISTINGS, LISTINGS
from segzero.train.rewards import VARIANTS

SFT_TARGETS: tuple[str, ...] = ("answer", "perception")

# Fields a resumed run may change without --allow-changed-config: they decide what is logged, how often checkpoints
# are written and kept, and which resources are used, never what is trained (gradient checkpointing recomputes the
# same activations). Every other field is compared with OUTPUT_DIR/config.yaml on --resume.
RESUME_NEUTRAL_FIELDS: tuple[str, ...] = (
    "logging_steps",
    "report_to",
    "run_name",
    "save_steps",
    "save_total_limit",
    "sample_every",
    "sample_count",
    "reward_device",
    "num_proc",
    "gradient_checkpointing",
    "vllm_gpu_memory_utilization",
    "vllm_server_base_url",
)


def _f(default, help: str, **kw):  # noqa: A002 - "help" mirrors argparse/dataclass metadata wording
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


def _merge(data: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``update``'s fields; a mapping field is updated entry by entry, not replaced."""
    out = dict(data)
    for key, value in update.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_recipe(path: Path, *, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The fields of a YAML recipe, its ``base`` recipe (if any) read first; raises ``UserError`` on a bad file."""
    import yaml

    if not path.is_file():
        raise UserError(f"training config not found: {path}")
    if path.resolve() in _seen:
        raise UserError(f"{path}: recipe bases form a cycle")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if loaded is not None and not isinstance(loaded, dict):
        raise UserError(f"{path}: a training config must be a YAML mapping of field: value")
    data = dict(loaded or {})
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise UserError(f"{path}: base must be a recipe file name, got {base!r}")
    return _merge(read_recipe(path.parent / base, _seen=(*_seen, path.resolve())), data)


@dataclass
class TrainConfig:
    """Configuration of one GRPO run (model, data, rewards, GRPO, scale, checkpoints, logging)."""

    # Model
    model: str = _f(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "Policy model: hub id or local folder. 'tiny' builds the random tiny models into OUTPUT_DIR/tiny_models "
        "(segzero.models.tiny.build_tiny_models) and trains that reasoner (CPU smoke runs); 'shapes' builds the "
        "from-scratch shapes-world reasoner into OUTPUT_DIR/shapes_model (segzero.worlds.reasoner.build_shapes_reasoner).",
    )
    shapes_model: dict[str, Any] = _f(
        {},
        "With model 'shapes': keyword arguments of segzero.worlds.reasoner.build_shapes_reasoner (e.g. arch: qwen3_vl, "
        "number_tokens: true, vocab_size, hidden_size); {} = its defaults. Ignored for other models (so a "
        "recipe's checkpoint can be resumed with --set model=FOLDER).",
    )
    dtype: str = _f("bfloat16", "Weights dtype when loading: bfloat16, float16, float32 or auto.")
    attn_implementation: str | None = _f(None, "Attention kernel (e.g. flash_attention_2, sdpa); None = default.")
    frame: int = _f(
        DEFAULT_FRAME, "Model frame side in pixels: images are resized to frame x frame, gt scaled into it."
    )

    # Data
    dataset: str = _f(
        "Ricky06662/refCOCOg_9k_840",
        "Training set: a hub id, a local folder (save_to_disk) or .parquet file/folder, or 'synthetic' for the "
        "built-in shapes world (segzero.worlds.shapes).",
    )
    dataset_split: str = _f("train", "Split to read from a hub id or DatasetDict folder.")
    max_samples: int | None = _f(None, "Use only the first N rows (after dropping bad rows); None = all.")
    synthetic_samples: int = _f(64, "Rows generated when dataset == 'synthetic'.")
    synthetic_seed: int = _f(0, "Seed of the synthetic world (rows depend only on seed and index).")
    synthetic_world: dict[str, Any] = _f(
        {},
        "Shapes-world settings when dataset == 'synthetic': ShapesConfig fields (max_shapes, kinds, overlap, ...; "
        "the size is the frame) plus 'families' (query families); {} = the default world "
        "(segzero.worlds.shapes.world_from_spec).",
    )
    out_of_frame_tolerance: float = _f(
        1.0, "Bad-row rule: gt coordinates may exceed the image by at most this many pixels."
    )
    num_proc: int | None = _f(None, "Worker processes for dataset preprocessing (datasets.map num_proc).")

    # Rewards and prompt
    reward_kind: str = _f(
        "segzero", "Reward set: 'segzero' (single object, 5 terms) or 'visionreasoner' (multi object, 4 terms)."
    )
    prompt: str | None = _f(
        None, "Prompt template kind (segzero / visionreasoner / compact); None = same as reward_kind."
    )
    reward_weights: dict[str, float] = _f({}, "Weight per reward term name (missing terms weigh 1.0).")
    reward_thresholds: dict[str, float] = _f(
        {},
        "Overrides of the reward terms' pixel thresholds (segzero.rewards.reward_functions keywords: "
        "iou_threshold, l1_threshold, distance_threshold). The paper's values (0.5, 10 px, 100 px) are for the "
        "840 frame; a small frame scales the pixel ones (e.g. x 112/840).",
    )
    reward_variant: str = _f(
        "hard",
        "'hard' = the paper's 0/1 terms; 'soft' (segzero kind only) = box_iou as the IoU itself and box_l1 as "
        "max(0, 1 - L1/20px) (segzero.train.soft_rewards); 'mask' = the format terms plus mask_iou, the IoU of the "
        "mask the segmenter makes from the answer with the gt mask, in place of the accuracy terms; 'mask_mix' = "
        "the paper's terms plus mask_iou (segzero.train.mask_reward; rows need a gt mask: the shapes world has it).",
    )
    reward_segmenter: str | None = _f(
        None,
        "Segmenter of the mask_iou term: 'color' / 'grabcut' (weight-free), a SAM2 folder or hub id; None = the "
        "policy folder's recorded segmenter, else facebook/sam2-hiera-large.",
    )
    reward_device: str | None = _f(None, "Device of the mask_iou term's SAM2 (e.g. 'cuda:1'); None = the default.")
    reward_plugins: list[str] = _f(
        [],
        "Your own reward functions, added to the kind's terms: 'FILE.py:FUNC' or 'package.module:FUNC', each "
        "f(completion, solution, **columns) -> float | dict of floats | None (segzero.train.plugins); "
        "`--reward SPEC` appends one. Built in: 'segzero.rewards.consistency:box_consistency' (the answer box "
        "agrees with a box the reasoning states).",
    )

    # GRPO (the paper's recipe)
    num_generations: int = _f(8, "Completions sampled per prompt (the GRPO group size).")
    prompts_per_step: int = _f(16, "Prompts per optimizer step (rollout batch); completions = this x num_generations.")
    per_device_batch_size: int = _f(8, "Completions per process per forward/backward (micro-batch).")
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.")
    top_p: float = _f(1.0, "Nucleus sampling of the rollouts.")
    max_completion_length: int = _f(1536, "Maximum generated tokens per completion.")
    learning_rate: float = _f(1e-6, "AdamW learning rate.")
    weight_decay: float = _f(1e-2, "AdamW weight decay.")
    lr_scheduler_type: str = _f("constant", "transformers scheduler name (constant, cosine, linear, ...).")
    warmup_steps: int = _f(0, "Linear warm-up steps.")
    beta: float = _f(5e-3, "KL coefficient to the reference model (k3 low-variance estimator); 0 drops the ref model.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    loss_type: str = _f("grpo", "TRL loss normalisation: grpo, dr_grpo, dapo, bnpo, ...")
    num_train_epochs: float = _f(1.0, "Epochs over the training set (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Optimizer steps; -1 = derived from num_train_epochs.")
    bf16: bool = _f(True, "bf16 mixed precision.")
    gradient_checkpointing: bool = _f(True, "Recompute activations in backward to save memory.")
    seed: int = _f(42, "Seed of model init, data shuffling and sampling (same seed -> same data order).")
    use_cpu: bool = _f(False, "Train on CPU even when a GPU is present.")

    # Scale: vLLM rollouts
    use_vllm: bool = _f(False, "Generate rollouts with vLLM instead of transformers generate().")
    vllm_mode: str = _f("colocate", "'colocate' (vLLM in the training processes) or 'server' (trl vllm-serve).")
    vllm_server_base_url: str | None = _f(None, "Server mode: URL of `trl vllm-serve` (e.g. http://node0:8000).")
    vllm_gpu_memory_utilization: float = _f(0.3, "Colocate mode: GPU memory fraction vLLM may take.")
    vllm_tensor_parallel_size: int = _f(1, "Colocate mode: tensor-parallel size of the vLLM engine.")

    # Scale: LoRA / QLoRA
    lora: bool = _f(False, "Train LoRA adapters (peft) instead of all weights; no reference model copy needed.")
    lora_r: int = _f(64, "LoRA rank.")
    lora_alpha: int = _f(128, "LoRA alpha.")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_target_modules: str | list[str] = _f(
        r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        "Modules that get adapters (peft semantics: a list of name suffixes, or one regex matched against full "
        "module names). Default: every linear layer of the language model, none in the vision tower.",
    )
    load_in_4bit: bool = _f(False, "QLoRA: load the base model in 4-bit NF4 (needs bitsandbytes and a GPU).")
    merge_lora: bool = _f(True, "Merge LoRA adapters into the weights of OUTPUT_DIR/final (else save the adapter).")

    # Checkpoints and logging
    save_steps: int = _f(100, "Save a checkpoint (model + optimizer + scheduler + RNG) every N steps.")
    save_total_limit: int | None = _f(3, "Keep at most this many checkpoints (oldest removed).")
    logging_steps: int = _f(1, "Log metrics every N steps.")
    report_to: list[str] = _f(["tensorboard"], "Trackers: tensorboard, wandb, none.")
    run_name: str | None = _f(None, "Run name for the trackers.")
    sample_every: int = _f(
        10, "Write completions with their per-term rewards to samples.jsonl every N steps (0 = off)."
    )
    sample_count: int = _f(8, "Completions written per sampled step.")

    # Format warm-up before GRPO (segzero.train.warmup): for models built from scratch only
    sft_steps: int = _f(
        0,
        "Supervised format warm-up steps (TRL SFTTrainer on gt answers WITHOUT reasoning: a fixed think template) "
        "before GRPO; the result is OUTPUT_DIR/warmup and GRPO starts from it. 0 = none (the paper's setting).",
    )
    sft_learning_rate: float = _f(1e-3, "Warm-up AdamW learning rate (cosine schedule).")
    sft_batch_size: int = _f(16, "Warm-up rows per step.")
    sft_think: str = _f("I look for {query}.", "Warm-up think text in place of reasoning ({query} = the query).")
    sft_world: dict[str, Any] = _f(
        {},
        "Shapes-world settings of the warm-up rows, merged over synthetic_world (dataset 'synthetic' only); e.g. "
        "{families: [attribute]}: the warm-up sees naming queries only and GRPO alone meets the others. "
        "{} = the warm-up uses the GRPO training rows.",
    )
    sft_samples: int | None = _f(None, "Warm-up rows generated when sft_world is set; None = synthetic_samples.")
    sft_target: str = _f(
        "answer",
        "Warm-up target: 'answer' (sft_think + the gt answer, TRL SFTTrainer) or 'perception' (list every shape "
        "with its box and points, pick one, copy it into the answer: segzero.train.perception; dataset "
        "'synthetic' only, rows drawn on the fly).",
    )
    sft_choice: str = _f(
        "random",
        "Perception warm-up: which listed shape the target picks: 'random' (the query is never supervised; GRPO "
        "learns the choice) or 'gt' (the shape the query means: supervised fine-tuning on gt answers).",
    )
    sft_compare: bool = _f(
        False,
        "gt-answer targets: a superlative query's target compares the candidates pair by pair before it decides "
        "('Compare largest: 1 (45) or 2 (44): 1; ...'). Measured on the shapes model: it did not help (the tiny "
        "model copies the numbers but does not learn to compare them; benchmarks/shapes_grounding.md).",
    )
    sft_winner: bool = _f(
        False,
        "gt-answer targets: a superlative query's target states what it compares and the winning listed number "
        "before it decides ('Pick by largest area: 71. The query means ...'): a copy of the largest number, then a "
        "lookup of the name next to it, instead of one step (segzero.train.perception.winner). Not with "
        "sft_compare. Measured from the shipped shapes model: the number written is rarely a listed one, and "
        "right fell (benchmarks/shapes_grounding.md).",
    )
    sft_listing: str = _f(
        "left_to_right",
        "Perception targets: 'left_to_right' lists the shapes left to right for every query; 'query' lists a "
        "superlative query's shapes in the order it asks about, the winner first ('I see, largest first: 1 ...', "
        "'I see, from the top: 1 ...'), so its answer is the first listed candidate and the order is found in the "
        "image, not by comparing listed numbers. Measured from the shipped shapes model: the phrase is learnt, the "
        "order is not (it keeps listing left to right; benchmarks/shapes_grounding.md). 'area_first': left to "
        "right, each shape's area before its name ('1 area 61 purple triangle [..] ...'). 'orders': left to right, "
        "then the scene's orders ('From the top: 2 blue square, 1 red circle. Largest first: ...'), written for "
        "every query and weighed as the decision, so a superlative's answer is the first or last entry of one. "
        "Measured from the shapes model shipped before the ranked one: the orders are learnt, the decision "
        "ignores them "
        "(benchmarks/shapes_grounding.md). 'ranked': left to right, then (gt targets) a superlative's candidates "
        "in the order it asks about, the winner first, right before the decision ('Ranked largest first: 3 red "
        "circle, 1 blue square. The query means the red circle, 3.'): the decision copies the entry after the colon. "
        "The shipped shapes model's last stage (recipes/shapes_ranked.yaml): dev right 80% -> 87%.",
    )
    sft_drill_fraction: float = _f(
        0.0,
        "gt-answer rows: the share that are decision drills (segzero.train.drills): a superlative query over a "
        "made-up listing of 2-5 shapes on a blank image, only the decision and answer in the loss; they teach "
        "reading the listed numbers. 0 = none. Measured on the shapes model: drills rose, scenes fell "
        "(benchmarks/shapes_decision_probe.md).",
    )
    sft_warmup_drills: float = _f(
        0.0,
        "Perception warm-up rows (sft_choice 'random'): the share that are decision drills (as sft_drill_fraction), "
        "so the comparison of listed numbers is learnt from the start, alongside seeing; the scene rows keep "
        "their random pick (but see sft_warmup_gt_families). Needs sft_listing 'left_to_right' or 'area_first'. "
        "0 = none. Measured from a fresh "
        "shapes model (0.25, then 2000 gt-answer steps with 0.2 drills): 72.9% right on 512 dev scenes, below the "
        "recipe without drills (benchmarks/shapes_grounding.md).",
    )
    sft_warmup_gt_families: list[str] = _f(
        [],
        "Perception warm-up (sft_choice 'random'): query families whose scene rows pick the shape the query means "
        "instead of a random one, e.g. [superlative] next to sft_warmup_drills, so the warm-up does not ask for a "
        "random pick on the queries its drills answer. [] = every scene row picks at random.",
    )
    sft_no_target: float = _f(
        0.0,
        "gt-answer rows (dataset 'synthetic'): the share whose query means no shape of the scene ('the red circle' "
        "where there is none); their target decides 'The query means nothing.' and answers [], which segzero eval "
        "scores as GRES's N-acc. 0 = every query means one shape.",
    )
    sft_warmup_steps: int = _f(10, "Perception warm-up: linear learning-rate warm-up steps before the cosine decay.")
    sft_cosine_steps: int | None = _f(
        None,
        "Perception warm-up: the step at which its cosine learning rate reaches 0 (None = sft_steps). Larger than "
        "sft_steps = a run stopped part-way down the cosine (the answer stage then finishes the decay).",
    )
    sft_answer_steps: int = _f(
        0,
        "After the perception warm-up: steps of supervised gt answers (the same target with the gt shape picked) "
        "from it, into OUTPUT_DIR/answer_sft, where GRPO then starts. 0 = none (GRPO learns the pick alone). With "
        "sft_steps: 0 the stage starts from `model` itself (e.g. continuing a trained shapes model).",
    )
    sft_answer_learning_rate: float = _f(5e-4, "Peak learning rate of the gt-answer stage (cosine schedule).")
    sft_answer_loss: str = _f(
        "all",
        "Which completion tokens the gt-answer stage supervises: 'all', or 'decision' (from a superlative's "
        "comparison chain, else 'The query means', on: "
        "the listing, learnt in the warm-up, stays out of the loss and the pick is not 1 token in ~125 of it).",
    )
    sft_answer_decision_weight: float = _f(
        1.0,
        "Loss weight of the gt-answer stage's tokens from 'The query means' on (the shape it names, then the "
        "answer), relative to the listing's (1 = the plain mean over the completion).",
    )
    sft_only: bool = _f(False, "Stop after the warm-up stage(s) (their last output is the result); no GRPO.")

    # Pass-through
    grpo_args: dict[str, Any] = _f({}, "Further trl.GRPOConfig arguments, passed unchanged (they win over the above).")

    # ------------------------------------------------------------------ loading
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys raise ``UserError`` naming them and ``source``."""
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise UserError(f"{source}: unknown training config key(s) {unknown}; see `segzero train --list-fields`")
        hints = typing.get_type_hints(cls)
        data = dict(data)
        for key, value in data.items():
            # PyYAML reads "1e-6" (no dot) as a string: accept numeric strings for float fields.
            if isinstance(value, str) and hints[key] in (float, float | None):
                try:
                    data[key] = float(value)
                except ValueError as err:
                    raise UserError(f"{source}: {key} must be a number, got {value!r}") from err
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, *, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML recipe (None = defaults) and apply ``key=value`` overrides (values parsed as YAML).

        A recipe may start from another: ``base: other.yaml`` (a path relative to the recipe's folder) reads that
        recipe first, then this one's fields replace its fields (mapping fields are updated entry by entry).
        """
        data = read_recipe(Path(path)) if path is not None else {}
        return cls.from_dict(_merge(data, parse_overrides(overrides or [])), source=str(path) if path else "overrides")

    def validate(self) -> None:
        """Raise ``UserError`` for values that cannot work together."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            base = {int: int, float: (int, float), bool: bool, str: str}.get(hint)
            if base is not None and (not isinstance(value, base) or (hint is int and isinstance(value, bool))):
                raise UserError(f"training config: {f.name} must be {hint.__name__}, got {value!r}")
        if self.reward_kind not in KINDS:
            raise UserError(f"reward_kind must be 'segzero' or 'visionreasoner', got {self.reward_kind!r}")
        if self.prompt is not None and self.prompt not in PROMPT_KINDS:
            raise UserError(f"prompt must be one of {sorted(PROMPT_KINDS)} or null, got {self.prompt!r}")
        if self.prompt == "compact" and self.reward_kind != "segzero":
            raise UserError("prompt 'compact' asks for Seg-Zero's single-object answer: use reward_kind 'segzero'")
        if self.vllm_mode not in ("colocate", "server"):
            raise UserError(f"vllm_mode must be 'colocate' or 'server', got {self.vllm_mode!r}")
        if self.num_generations < 2:
            raise UserError("num_generations must be >= 2 (GRPO compares completions within a group)")
        if self.frame < 28:
            raise UserError(f"frame must be at least 28 pixels (one merged vision patch), got {self.frame}")
        if self.load_in_4bit and not self.lora:
            raise UserError("load_in_4bit (QLoRA) needs lora: true")
        if self.reward_variant not in VARIANTS:
            raise UserError(f"reward_variant must be one of {VARIANTS}, got {self.reward_variant!r}")
        if self.reward_variant == "soft" and self.reward_kind != "segzero":
            raise UserError("reward_variant 'soft' is defined for reward_kind 'segzero' only")
        bad = [p for p in self.reward_plugins if not isinstance(p, str) or ":" not in p]
        if not isinstance(self.reward_plugins, list) or bad:
            raise UserError(f"reward_plugins: each entry is 'FILE.py:FUNC' or 'package.module:FUNC', got {bad}")
        if self.sft_steps < 0 or self.sft_batch_size < 1:
            raise UserError("sft_steps must be >= 0 and sft_batch_size >= 1")
        if (self.sft_world or self.sft_samples is not None) and self.dataset != "synthetic":
            raise UserError("sft_world / sft_samples apply to dataset: synthetic only")
        if self.sft_target not in SFT_TARGETS or self.sft_choice not in CHOICES:
            raise UserError(
                f"sft_target must be one of {SFT_TARGETS} and sft_choice one of {CHOICES}, got "
                f"{self.sft_target!r} / {self.sft_choice!r}"
            )
        if self.sft_target == "perception" and (self.dataset != "synthetic" or self.reward_kind != "segzero"):
            raise UserError("sft_target 'perception' needs dataset: synthetic and reward_kind: segzero")
        if self.sft_answer_steps < 0 or (self.sft_answer_steps and self.sft_target != "perception"):
            raise UserError("sft_answer_steps must be >= 0 and needs sft_target: perception")
        if self.sft_compare + self.sft_winner + (self.sft_listing == "ranked") > 1:
            raise UserError(
                "sft_compare, sft_winner and sft_listing 'ranked' are ways to state a superlative's decision: pick one"
            )
        if self.sft_listing not in LISTINGS:
            raise UserError(f"sft_listing must be one of {LISTINGS}, got {self.sft_listing!r}")
        if not 0.0 <= self.sft_no_target < 1.0:
            raise UserError(f"sft_no_target must be in [0, 1), got {self.sft_no_target!r}")
        if not 0.0 <= self.sft_drill_fraction < 1.0:
            raise UserError(f"sft_drill_fraction must be in [0, 1), got {self.sft_drill_fraction!r}")
        if not 0.0 <= self.sft_warmup_drills < 1.0:
            raise UserError(f"sft_warmup_drills must be in [0, 1), got {self.sft_warmup_drills!r}")
        if (self.sft_drill_fraction or self.sft_warmup_drills) and self.sft_listing not in DRILL_LISTINGS:
            raise UserError(
                f"decision drills list their made-up shapes left to right, without orders (sft_listing one of "
                f"{DRILL_LISTINGS}): not with sft_listing {self.sft_listing!r}"
            )
        from segzero.worlds.queries import FAMILIES

        unknown = sorted(set(self.sft_warmup_gt_families) - set(FAMILIES))
        if unknown:
            raise UserError(f"sft_warmup_gt_families: unknown families {unknown}; known: {list(FAMILIES)}")
        if self.sft_answer_loss not in ("all", "decision"):
            raise UserError(f"sft_answer_loss must be 'all' or 'decision', got {self.sft_answer_loss!r}")
        if not self.sft_answer_decision_weight > 0:
            raise UserError(f"sft_answer_decision_weight must be > 0, got {self.sft_answer_decision_weight!r}")
        if self.sft_cosine_steps is not None and self.sft_cosine_steps < self.sft_steps:
            raise UserError(f"sft_cosine_steps ({self.sft_cosine_steps}) must be >= sft_steps ({self.sft_steps})")
        if self.sft_only and self.sft_steps < 1 and self.sft_answer_steps < 1:
            raise UserError("sft_only: true needs sft_steps >= 1 or sft_answer_steps >= 1")
        if self.sft_samples is not None and self.sft_samples < 1:
            raise UserError(f"sft_samples must be >= 1 or null, got {self.sft_samples}")
        bad = set(self.shapes_model) & {"path", "seed", "frame"}
        if bad:
            raise UserError(f"shapes_model cannot set {sorted(bad)}: they come from output_dir, seed and frame")
        if self.sample_every < 0 or self.save_steps < 1 or self.logging_steps < 1:
            raise UserError("sample_every must be >= 0, save_steps and logging_steps >= 1")

    @property
    def prompt_kind(self) -> str:
        return self.prompt or self.reward_kind

    def gradient_accumulation_steps(self, world_size: int = 1) -> int:
        """Accumulation steps so that one optimizer step sees ``prompts_per_step * num_generations`` completions."""
        total = self.prompts_per_step * self.num_generations
        per_pass = self.per_device_batch_size * world_size
        if total % per_pass:
            raise UserError(
                f"prompts_per_step * num_generations = {total} completions per step is not divisible by "
                f"per_device_batch_size * world_size = {per_pass}"
            )
        return total // per_pass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed_fields(self, saved: dict[str, Any]) -> list[str]:
        """The fields (in declaration order, then keys only ``saved`` has) whose values differ from ``saved``, a
        config mapping as ``config.yaml`` holds it; a field ``saved`` lacks (an older version) counts as its
        default. Values are compared after a YAML round trip (tuples as lists)."""
        import yaml

        new = yaml.safe_load(yaml.safe_dump(self.to_dict()))
        defaults = yaml.safe_load(yaml.safe_dump(type(self)().to_dict()))
        changed = [k for k in new if saved.get(k, defaults[k]) != new[k]]
        return changed + [k for k in saved if k not in new]

    def describe(self) -> str:
        """One line per field: ``name = value  # help``."""
        return "\n".join(
            f"{f.name} = {getattr(self, f.name)!r}  # {f.metadata.get('help', '')}" for f in dataclasses.fields(self)
        )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=[x, y]", "c=null"]`` -> ``{"a": 1, "b": ["x", "y"], "c": None}`` (values read as YAML).

    Dotted keys set entries of dict fields: ``reward_weights.iou=2`` or ``grpo_args.top_k=50``.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"override must look like key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise UserError(f"override {item!r}: value is not valid YAML") from err
        if "." in key:
            head, sub = key.split(".", 1)
            if not isinstance(out.setdefault(head, {}), dict):
                raise UserError(f"override {item!r}: {head} was already set to a non-mapping value")
            out[head][sub] = value
        else:
            out[key] = value
    return out
