"""What a reasoner checkpoint says about itself: its ``segzero.json``, the prompt family its own files name, the
generation limit of that family, the frame its answers are in, and whether a local folder holds its weights.

    from segzero.models.checkpoint import detect_prompt_kind, resolve_prompt_and_frame, missing_weights
    detect_prompt_kind("./checkpoints/vr7b")        # PromptChoice(kind="visionreasoner", reason="its README.md ...")
    resolve_prompt_and_frame("./checkpoints/vr7b")  # ("visionreasoner", 840)
    resolve_answer_frame("./checkpoints/q3", "qwen3vl")  # 1000: relative coordinates, whatever the pixel frame
    missing_weights(Path("./checkpoints/vr7b"))     # None, or one line saying which weight files are missing

The prompt family (``segzero.prompts.PROMPT_KINDS``) is decided, first match wins, by: an explicit ``prompt``; the
folder's ``segzero.json``; its ``README.md`` model card (the title, else the text: the released
``Ricky06662/VisionReasoner-7B`` card is titled "VisionReasoner-7B from the Seg-Zero Framework", the
``Ricky06662/Seg-Zero-7B`` one "Seg-Zero-7B"; VisionReasoner wins when both are named); ``config.json``'s
``_name_or_path``; the released ids (``PROMPT_PRESETS``); the architecture ``config.json`` names (a Qwen3-VL model:
the ``qwen3vl`` family, ``ARCHITECTURE_FAMILIES``); the folder's or id's own name. For a hub id the model card and
config are read only from the local hub cache (nothing is downloaded here). A family guessed from an architecture or
a name, or the Seg-Zero prompt used because nothing names one, is logged as one warning line saying how to choose.

The answer frame (``resolve_answer_frame``; see ``segzero.geometry``): an explicit one, else the folder's
``segzero.json`` ``answer_frame``, else the family's (``segzero.prompts.ANSWER_FRAMES``: 1000 for ``qwen3vl``), else
None: the answers are in the pixel frame the image is resized to.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME, frame_size
from segzero.prompts import ANSWER_FRAMES, PROMPT_KINDS

log = logging.getLogger("segzero.models")

# A reasoner folder may carry this file: how the weights expect to be driven ({"frame": int, "prompt": kind,
# "answer_frame": int or [w, h] when its answers are not in the pixel frame, ...}).
# Written by ``segzero tiny-models`` and ``segzero train``; released hub checkpoints do not have it (840, preset).
MODEL_INFO_FILE = "segzero.json"
MODEL_CARD_FILE = "README.md"
CONFIG_FILE = "config.json"

# The name that means the shapes model shipped inside the package (``segzero.assets.shapes_model_path``), wherever
# a reasoner folder is asked for: ``--reasoner shipped``, ``segzero world build --like shipped``.
SHIPPED_REASONER = "shipped"

# Known checkpoints -> the prompt they were trained on. Matching is case-insensitive on the id.
PROMPT_PRESETS: dict[str, str] = {
    "ricky06662/seg-zero-7b": "segzero",
    "ricky06662/seg-zero-3b": "segzero",
    "ricky06662/visionreasoner-7b": "visionreasoner",
}

# A family's name as checkpoints spell it ("VisionReasoner", "vision_reasoner", "Seg-Zero", "SegZero", ...), in the
# order they are looked for: VisionReasoner first, since VisionReasoner checkpoints come from the Seg-Zero framework
# and their cards name both.
FAMILY_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("visionreasoner", re.compile(r"vision[\s_-]*reasoner", re.IGNORECASE)),
    ("segzero", re.compile(r"seg[\s_-]*zero", re.IGNORECASE)),
    ("qwen3vl", re.compile(r"qwen[\s_-]*3[\s_-]*vl", re.IGNORECASE)),
)

# config.json model types -> the family a checkpoint of that architecture gets when none of its own files names one:
# a Qwen3-VL model answers grounding in relative 0..1000 coordinates, which the qwen3vl family reads.
ARCHITECTURE_FAMILIES: dict[str, str] = {"qwen3_vl": "qwen3vl", "qwen3_vl_moe": "qwen3vl"}

# New tokens each family's reference scripts generate at most: Seg-Zero's inference and evaluation scripts 1024,
# VisionReasoner's model wrapper 2048. "compact" (trained here, no reference script) keeps Seg-Zero's; "qwen3vl"
# (segzero's, no reference script) VisionReasoner's, whose multi-object answer it writes.
MAX_NEW_TOKENS: dict[str, int] = {"segzero": 1024, "visionreasoner": 2048, "compact": 1024, "qwen3vl": 2048}

# Weight files transformers loads from a local folder: one file, or an index naming its shards; PEFT adapters.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# What a weight file is when `git clone` ran without git-lfs: a small text file starting with this line.
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_BYTES = 1024


def expand_shipped(name_or_path: str | Path) -> str:
    """``name_or_path`` as a string, with ``SHIPPED_REASONER`` (when no such local folder exists) replaced by the
    shipped model's folder."""
    name = str(name_or_path)
    if name == SHIPPED_REASONER and not Path(name).exists():
        from segzero.assets import shapes_model_path

        return str(shapes_model_path())
    return name


def read_model_info(name_or_path: str | Path) -> dict:
    """The ``segzero.json`` of a local reasoner folder (``{}`` for hub ids and folders without one)."""
    path = Path(expand_shipped(name_or_path)).expanduser() / MODEL_INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"unreadable {path}: {err}") from None
    if not isinstance(info, dict):
        raise UserError(f"{path} must hold a JSON object, got {type(info).__name__}")
    return info


def write_model_info(folder: str | Path, *, update: bool = False, **info) -> Path:
    """Write ``segzero.json`` into a saved reasoner folder: ``frame``, ``prompt``, optionally ``answer_frame`` (see
    ``resolve_answer_frame``), ``segmenter`` (see ``recorded_segmenter``) and any provenance fields. ``update=True``
    keeps the fields already there."""
    path = Path(folder) / MODEL_INFO_FILE
    if update:
        info = {**read_model_info(folder), **info}
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def recorded_world(name_or_path: str | Path) -> dict | None:
    """The shapes-world settings a reasoner folder's ``segzero.json`` records as ``world`` (None when absent)."""
    world = read_model_info(name_or_path).get("world")
    return world if isinstance(world, dict) else None


def recorded_segmenter(name_or_path: str | Path) -> str | None:
    """The segmenter a reasoner folder's ``segzero.json`` names, if any.

    A value starting with ``.`` is a path relative to the reasoner folder (``"../segmenter"`` for the tiny models,
    ``"../tiny_models/segmenter"`` for a ``tiny_cpu`` training run); anything else (``"color"``, a hub id, an
    absolute path) is returned as written.
    """
    value = read_model_info(name_or_path).get("segmenter")
    if not value:
        return None
    if str(value).startswith("."):
        return str((Path(expand_shipped(name_or_path)).expanduser() / value).resolve())
    return str(value)


def family_named_in(text: str) -> str | None:
    """The prompt family whose name ``text`` contains (VisionReasoner before Seg-Zero), or None."""
    for kind, pattern in FAMILY_NAMES:
        if pattern.search(text):
            return kind
    return None


def default_prompt_kind(name_or_path: str) -> str:
    """The prompt kind for a model id by its name alone: the presets, then a family named in it, else "segzero"."""
    key = str(name_or_path).strip().rstrip("/").lower()
    return PROMPT_PRESETS.get(key) or family_named_in(key) or "segzero"


@dataclass(frozen=True)
class PromptChoice:
    """The prompt family of a checkpoint and what decided it; ``guessed``: nothing of the checkpoint's own said."""

    kind: str
    reason: str
    guessed: bool = False


def _card_family(text: str) -> str | None:
    """The family a model card names: its first ``# `` title when that names one, else anything in the card."""
    title = next((line[2:] for line in text.splitlines() if line.startswith("# ")), "")
    return family_named_in(title) or family_named_in(text)


def _own_file(name_or_path: str, filename: str) -> str | None:
    """The text of a checkpoint's file: from the folder, or for a hub id from the local hub cache only."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        file = path / filename
        return file.read_text(encoding="utf-8", errors="replace") if file.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name_or_path, filename)
    except ValueError:  # not a valid hub id
        return None
    return Path(cached).read_text(encoding="utf-8", errors="replace") if isinstance(cached, str) else None


def detect_prompt_kind(name_or_path: str | Path) -> PromptChoice:
    """The prompt family of a reasoner folder or hub id, from its own files first (see the module doc)."""
    name = expand_shipped(name_or_path)
    recorded = read_model_info(name).get("prompt")
    if recorded:
        return PromptChoice(str(recorded), f"its {MODEL_INFO_FILE} says {recorded!r}")
    card = _own_file(name, MODEL_CARD_FILE)
    if card and (kind := _card_family(card)):
        return PromptChoice(kind, f"its {MODEL_CARD_FILE} model card names {kind}")
    config = _own_file(name, CONFIG_FILE)
    origin = model_type = None
    if config:
        try:
            data = json.loads(config)
            origin, model_type = data.get("_name_or_path"), data.get("model_type")
        except (ValueError, AttributeError):  # not JSON, or not a JSON object: the model loader reports it
            pass
        if isinstance(origin, str) and (kind := PROMPT_PRESETS.get(origin.lower()) or family_named_in(origin)):
            return PromptChoice(kind, f"its {CONFIG_FILE} was saved from {origin!r}")
    key = name.strip().rstrip("/").lower()
    if key in PROMPT_PRESETS:
        return PromptChoice(PROMPT_PRESETS[key], "it is a released checkpoint")
    if isinstance(model_type, str) and (kind := ARCHITECTURE_FAMILIES.get(model_type)):
        return PromptChoice(kind, f"its {CONFIG_FILE} is a {model_type!r} model", guessed=True)
    if kind := family_named_in(key):
        return PromptChoice(kind, f"{kind} guessed from its name", guessed=True)
    return PromptChoice("segzero", "nothing in it names a prompt family", guessed=True)


_warned: set[tuple[str, str]] = set()


def resolve_prompt_and_frame(
    name_or_path: str | Path, *, prompt: str | None = None, frame: int | tuple[int, int] | None = None
) -> tuple[str, int | tuple[int, int]]:
    """The prompt kind and model frame to drive a reasoner with.

    The prompt: an explicit ``prompt``, else ``detect_prompt_kind`` (a guess is logged once per checkpoint as one
    warning line). The frame: an explicit ``frame``, else the folder's ``segzero.json``, else the paper's 840.
    """
    info = read_model_info(name_or_path)
    kind = prompt
    if kind is None:
        choice = detect_prompt_kind(name_or_path)
        kind = choice.kind
        if choice.guessed and (str(name_or_path), kind) not in _warned:
            _warned.add((str(name_or_path), kind))
            log.warning(
                'reasoner %s: %s; using the %s prompt (choose with --prompt, or a "prompt" entry in its %s)',
                name_or_path,
                choice.reason,
                kind,
                MODEL_INFO_FILE,
            )
    if kind not in PROMPT_KINDS:
        raise UserError(f"unknown prompt kind {kind!r}; use one of {', '.join(sorted(PROMPT_KINDS))}")
    if frame is None:
        frame = info.get("frame", DEFAULT_FRAME)
    if isinstance(frame, list):
        frame = tuple(frame)
    return kind, frame


def resolve_answer_frame(
    name_or_path: str | Path, kind: str, *, answer_frame: int | tuple[int, int] | None = None
) -> int | tuple[int, int] | None:
    """The frame a reasoner's answers are in when it is not the pixel frame (see the module doc): ``answer_frame``,
    else the folder's ``segzero.json`` ``answer_frame``, else the family's (``ANSWER_FRAMES``), else None (the
    answers are in the pixel frame). ``UserError`` for a recorded value that is not a frame."""
    if answer_frame is None:
        answer_frame = read_model_info(name_or_path).get("answer_frame", ANSWER_FRAMES.get(kind))
    if answer_frame is None:
        return None
    try:
        width, height = frame_size(answer_frame)
    except ValueError as err:
        raise UserError(f"reasoner {name_or_path}: answer_frame {answer_frame!r}: {err}") from None
    return width if width == height else (width, height)


def answer_frame_of(reasoner) -> int | tuple[int, int]:
    """The frame a loaded reasoner's completions are in: its ``answer_frame`` when it has one (``Reasoner``), else
    the one its checkpoint and prompt family give (``resolve_answer_frame`` of its ``name`` and ``prompt``: any
    reasoner with the ``ReasonerProtocol`` members), else its pixel ``frame``."""
    if hasattr(reasoner, "answer_frame"):
        recorded = reasoner.answer_frame
    elif hasattr(reasoner, "name") and hasattr(reasoner, "prompt"):
        recorded = resolve_answer_frame(reasoner.name, reasoner.prompt)
    else:  # a reasoner that says nothing of its checkpoint answers in its pixel frame
        recorded = None
    return reasoner.frame if recorded is None else recorded


def default_max_new_tokens(kind: str) -> int:
    """The generation limit of prompt family ``kind``'s reference scripts (``MAX_NEW_TOKENS``)."""
    return MAX_NEW_TOKENS.get(kind, MAX_NEW_TOKENS["segzero"])


def _lfs_pointer(path: Path) -> bool:
    """A Git LFS pointer file in place of the real file (a clone made without git-lfs)."""
    if path.stat().st_size > LFS_POINTER_MAX_BYTES:
        return False
    with path.open("rb") as f:
        return f.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX


def missing_weights(folder: Path) -> str | None:
    """Why a local model folder cannot be loaded for want of weights, in one line; None when they are all there.

    A folder needs ``model.safetensors`` (or ``pytorch_model.bin``), or an index with every shard it names; a PEFT
    adapter folder (``adapter_config.json``) its ``adapter_model.*``. Git LFS pointer files count as missing.
    """
    get = "download the weight files too (git lfs pull in a git clone, or hf download ID --local-dir DIR)"
    adapter = (folder / "adapter_config.json").is_file()
    singles = ADAPTER_WEIGHT_FILES if adapter else WEIGHT_FILES
    indexes = () if adapter else WEIGHT_INDEX_FILES
    for name in singles:
        if (folder / name).is_file():
            return f"{name} is a Git LFS pointer, not the weights: {get}" if _lfs_pointer(folder / name) else None
    for name in indexes:
        if not (folder / name).is_file():
            continue
        try:
            shards = sorted(set(json.loads((folder / name).read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return f"unreadable {name} ({type(err).__name__}: {err})"
        absent = [s for s in shards if not (folder / s).is_file() or _lfs_pointer(folder / s)]
        if absent:
            return f"{len(absent)} of the {len(shards)} weight shards of {name} are missing ({absent[0]}, ...): {get}"
        return None
    return f"it has no weights, only configs (none of {', '.join(singles + indexes)}): {get}"


__all__ = [
    "ARCHITECTURE_FAMILIES",
    "MAX_NEW_TOKENS",
    "MODEL_INFO_FILE",
    "PROMPT_PRESETS",
    "SHIPPED_REASONER",
    "PromptChoice",
    "answer_frame_of",
    "default_max_new_tokens",
    "default_prompt_kind",
    "detect_prompt_kind",
    "expand_shipped",
    "family_named_in",
    "missing_weights",
    "read_model_info",
    "recorded_segmenter",
    "recorded_world",
    "resolve_answer_frame",
    "resolve_prompt_and_frame",
    "write_model_info",
]
