"""``TrainConfig``: every knob of ``segzero train``, loadable from YAML with ``--set key=value`` overrides.

A recipe (``recipes/*.yaml``) is a mapping of ``TrainConfig`` fields, the Seg-Zero ones first (model, data,
rewards, GRPO, scale, checkpoints), then ``stages`` (what runs, in order: ``segzero.train.stages``); two small
configs nest (``vllm``, ``mask_reward``). Unknown keys are an error (a typo must not silently fall back to a
default); reading, ``base`` chains and ``--set`` overrides: ``segzero.train.recipes``. ``grpo_args`` passes any
further ``trl.GRPOConfig`` argument through unchanged. Usage::

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
from segzero.models.base import DEFAULT_SEGMENTER
from segzero.prompts import ANSWER_FRAMES, PROMPT_KINDS
from segzero.train.recipes import merge, parse_overrides, read_recipe
from segzero.train.rewards import VARIANTS

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
    "mask_reward.device",
    "num_proc",
    "gradient_checkpointing",
    "vllm.gpu_memory_utilization",
    "vllm.server_base_url",
)


def _f(default, help: str, **kw):  # noqa: A002 - "help" mirrors argparse/dataclass metadata wording
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda d=default: d, metadata={"help": help}, **kw)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass(frozen=True)
class MaskRewardConfig:
    """The segmenter in the loop of the ``mask_iou`` reward term (``segzero.train.mask_reward``)."""

    segmenter: str | None = _f(
        None,
        "'color' / 'grabcut' (weight-free), a SAM2 folder or hub id; None = the policy folder's recorded "
        f"segmenter, else {DEFAULT_SEGMENTER}.",
    )
    device: str | None = _f(None, "Device of its SAM2 (e.g. 'cuda:1'); None = the default.")


@dataclass(frozen=True)
class VllmConfig:
    """vLLM rollouts (``use_vllm: true``), TRL's two modes."""

    mode: str = _f("colocate", "'colocate' (vLLM in the training processes) or 'server' (trl vllm-serve).")
    server_base_url: str | None = _f(None, "Server mode: URL of `trl vllm-serve` (e.g. http://node0:8000).")
    gpu_memory_utilization: float = _f(0.3, "Colocate mode: GPU memory fraction vLLM may take.")
    tensor_parallel_size: int = _f(1, "Colocate mode: tensor-parallel size of the vLLM engine.")


NESTED: dict[str, type] = {"mask_reward": MaskRewardConfig, "vllm": VllmConfig}
"""Fields of ``TrainConfig`` that are small configs of their own (a mapping in YAML, ``a.b=v`` to set one)."""


@dataclass
class TrainConfig:
    """Configuration of one GRPO run (model, data, rewards, GRPO, scale, checkpoints, logging)."""

    # Model
    model: str = _f(
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "Policy model: hub id or local folder, or the name of a registered model builder (segzero.train.registry; "
        "`segzero train --list-fields` lists them): 'tiny' builds the random tiny models into "
        "OUTPUT_DIR/tiny_models (CPU smoke runs), 'shapes' a from-scratch shapes-world reasoner into "
        "OUTPUT_DIR/shapes_model.",
    )
    model_args: dict[str, Any] = _f(
        {},
        "Keyword arguments of the model builder `model` names (e.g. for 'shapes': arch, number_tokens, "
        "hidden_size); ignored for a hub id or folder (so a recipe's checkpoint can be continued with --set "
        "model=FOLDER).",
    )
    dtype: str = _f("bfloat16", "Weights dtype when loading: bfloat16, float16, float32 or auto.")
    attn_implementation: str | None = _f(None, "Attention kernel (e.g. flash_attention_2, sdpa); None = default.")
    frame: int = _f(
        DEFAULT_FRAME, "Model frame side in pixels: images are resized to frame x frame, gt scaled into it."
    )

    # Data
    dataset: str = _f(
        "Ricky06662/refCOCOg_9k_840",
        "Training set: a hub id, a local folder (save_to_disk, e.g. `segzero data build`) or .parquet file/folder, "
        "or a registered source ('synthetic': the shapes world, segzero.shapes.data).",
    )
    dataset_args: dict[str, Any] = _f(
        {},
        "Keyword arguments of a registered dataset source; for 'synthetic': samples (rows), seed (rows depend "
        "only on seed and index), world (segzero.shapes.world.world_from_spec settings: max_shapes, kinds, "
        "families, ...; `segzero demo` draws from the trained model's world).",
    )
    dataset_split: str = _f("train", "Split to read from a hub id or DatasetDict folder.")
    max_samples: int | None = _f(None, "Use only the first N rows (after dropping bad rows); None = all.")
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
        "max(0, 1 - L1/20px) (segzero.rewards.single.SOFT_TERMS); 'mask' = the format terms plus mask_iou, the IoU of the "
        "mask the segmenter makes from the answer with the gt mask, in place of the accuracy terms; 'mask_mix' = "
        "the paper's terms plus mask_iou (segzero.train.mask_reward; rows need a gt mask: the shapes world has it).",
    )
    reward_plugins: list[str] = _f(
        [],
        "Your own reward functions, added to the kind's terms: 'FILE.py:FUNC' or 'package.module:FUNC', each "
        "f(completion, solution, **columns) -> float | dict of floats | None (segzero.train.plugins); "
        "`--reward SPEC` appends one. Built in: 'segzero.rewards.consistency:box_consistency' (the answer box "
        "agrees with a box the reasoning states).",
    )
    mask_reward: MaskRewardConfig = _f(
        MaskRewardConfig(),
        "The segmenter of the mask_iou term (reward_variant 'mask' / 'mask_mix'): segmenter, device.",
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
    vllm: VllmConfig = _f(
        VllmConfig(), "vLLM settings: mode, server_base_url, gpu_memory_utilization, tensor_parallel_size."
    )

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

    # Stages: what runs, in order (segzero.train.stages)
    stages: list[Any] = _f(
        ["grpo"],
        "The stages run in order, each from the previous one's result: 'grpo' (the Seg-Zero stage: the fields "
        "above) and registered supervised stages, as names or {kind: NAME, field: value} (format_sft: answers "
        "without reasoning; perception_warmup and answer_sft: the shapes model's). ['grpo'] = the paper's recipe. "
        "A list without grpo stops after its last stage. `--set stages.KIND.FIELD=V` sets one stage field.",
    )

    # Pass-through
    grpo_args: dict[str, Any] = _f({}, "Further trl.GRPOConfig arguments, passed unchanged (they win over the above).")

    # ------------------------------------------------------------------ loading
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys raise ``UserError`` naming them and ``source``. A mapping in the
        layout before stages (``sft_*`` fields) is translated first (``segzero.train.legacy``)."""
        from segzero.train.legacy import translate

        data = translate(dict(data), source=source)
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise UserError(f"{source}: unknown training config key(s) {unknown}; see `segzero train --list-fields`")
        hints = typing.get_type_hints(cls)
        for key, value in list(data.items()):
            # PyYAML reads "1e-6" (no dot) as a string: accept numeric strings for float fields.
            if isinstance(value, str) and hints[key] in (float, float | None):
                try:
                    data[key] = float(value)
                except ValueError as err:
                    raise UserError(f"{source}: {key} must be a number, got {value!r}") from err
            if key in NESTED and isinstance(value, dict):
                known = {f.name for f in dataclasses.fields(NESTED[key])}
                if set(value) - known:
                    raise UserError(
                        f"{source}: unknown {key} key(s) {sorted(set(value) - known)}; known {sorted(known)}"
                    )
                data[key] = NESTED[key](**value)
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, *, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML recipe (None = defaults) and apply ``key=value`` overrides (values parsed as YAML).

        A recipe may start from another: ``base: other.yaml`` (a path relative to the recipe's folder) reads that
        recipe first, then this one's fields replace its fields (mapping fields are updated entry by entry;
        ``stages`` given as a mapping ``{KIND: {field: value}}`` updates the base's stages of those kinds).
        """
        data = read_recipe(Path(path)) if path is not None else {}
        return cls.from_dict(merge(data, parse_overrides(overrides or [])), source=str(path) if path else "overrides")

    def validate(self) -> None:
        """Raise ``UserError`` for values that cannot work together."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            base = {int: int, float: (int, float), bool: bool, str: str}.get(hint)
            if base is not None and (not isinstance(value, base) or (hint is int and isinstance(value, bool))):
                raise UserError(f"training config: {f.name} must be {hint.__name__}, got {value!r}")
            if f.name in NESTED and not isinstance(value, NESTED[f.name]):
                raise UserError(f"training config: {f.name} must be a mapping of its fields, got {value!r}")
        if self.reward_kind not in KINDS:
            raise UserError(f"reward_kind must be 'segzero' or 'visionreasoner', got {self.reward_kind!r}")
        if self.prompt is not None and self.prompt not in PROMPT_KINDS:
            raise UserError(f"prompt must be one of {sorted(PROMPT_KINDS)} or null, got {self.prompt!r}")
        if self.prompt == "compact" and self.reward_kind != "segzero":
            raise UserError("prompt 'compact' asks for Seg-Zero's single-object answer: use reward_kind 'segzero'")
        answer_frame = ANSWER_FRAMES.get(self.prompt_kind)
        if answer_frame is not None and self.frame != answer_frame:
            # the gt is written in the pixels of the resized image: only at this frame are they the answer's units
            raise UserError(
                f"prompt {self.prompt_kind!r} answers in relative 0..{answer_frame} coordinates: train it at "
                f"frame: {answer_frame} (the gt is written in the frame's pixels), got {self.frame}"
            )
        if self.vllm.mode not in ("colocate", "server"):
            raise UserError(f"vllm.mode must be 'colocate' or 'server', got {self.vllm.mode!r}")
        if self.num_generations < 2:
            raise UserError("num_generations must be >= 2 (GRPO compares completions within a group)")
        if self.frame < 28:
            raise UserError(f"frame must be at least 28 pixels (one merged vision patch), got {self.frame}")
        if self.load_in_4bit and not self.lora:
            raise UserError("load_in_4bit (QLoRA) needs lora: true")
        if self.reward_variant not in VARIANTS:
            raise UserError(f"reward_variant must be one of {tuple(VARIANTS)}, got {self.reward_variant!r}")
        if self.reward_kind not in VARIANTS[self.reward_variant].kinds:
            kinds = " / ".join(VARIANTS[self.reward_variant].kinds)
            raise UserError(f"reward_variant {self.reward_variant!r} is defined for reward_kind {kinds} only")
        bad = [p for p in self.reward_plugins if not isinstance(p, str) or ":" not in p]
        if not isinstance(self.reward_plugins, list) or bad:
            raise UserError(f"reward_plugins: each entry is 'FILE.py:FUNC' or 'package.module:FUNC', got {bad}")
        if self.sample_every < 0 or self.save_steps < 1 or self.logging_steps < 1:
            raise UserError("sample_every must be >= 0, save_steps and logging_steps >= 1")
        self.stage_list()  # names, fields and order of the stages
        from segzero.train.registry import check_arguments, is_registered

        for name, args, own in (
            ("model_args", self.model_args, {"seed", "frame"}),
            ("dataset_args", self.dataset_args, {"frame"}),
        ):
            if set(args) & own:
                raise UserError(f"{name} cannot set {sorted(set(args) & own)}: the run's own fields give them")
        if is_registered("models", self.model):
            check_arguments(
                "models", self.model, "model_args", "OUTPUT_DIR", seed=0, frame=self.frame, **self.model_args
            )
        if is_registered("datasets", self.dataset):
            check_arguments("datasets", self.dataset, "dataset_args", frame=self.frame, **self.dataset_args)

    def stage_list(self) -> list:
        """``[(StageKind, its config), ...]`` of ``stages`` (``segzero.train.stages.parse_stages``)."""
        from segzero.train.stages import parse_stages

        return parse_stages(self.stages, self)

    @property
    def runs_grpo(self) -> bool:
        """Whether the run ends with the GRPO stage (else its last supervised stage's folder is the result)."""
        return any((s if isinstance(s, str) else s.get("kind")) == "grpo" for s in self.stages)

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
        config mapping as ``config.yaml`` holds it (an older layout is translated first); a field ``saved`` lacks
        counts as its default; a small config's fields are compared one by one (``vllm.mode``). Values are
        compared after a YAML round trip (tuples as lists)."""
        import yaml

        from segzero.train.legacy import translate

        def flat(d: dict) -> dict:
            return {
                f"{k}.{kk}" if k in NESTED else k: vv
                for k, v in d.items()
                for kk, vv in (v.items() if k in NESTED and isinstance(v, dict) else [(None, v)])
            }

        new = flat(yaml.safe_load(yaml.safe_dump(self.to_dict())))
        defaults = flat(yaml.safe_load(yaml.safe_dump(type(self)().to_dict())))
        old = flat(translate(dict(saved), source="saved config", quiet=True))
        changed = [k for k in new if old.get(k, defaults[k]) != new[k]]
        return changed + [k for k in old if k not in new]

    def describe(self) -> str:
        """One line per field: ``name = value  # help``."""
        return "\n".join(
            f"{f.name} = {getattr(self, f.name)!r}  # {f.metadata.get('help', '')}" for f in dataclasses.fields(self)
        )
