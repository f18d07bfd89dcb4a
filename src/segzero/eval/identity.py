"""The identity of an evaluation run: everything that changes a prediction or its scoring, and nothing else.

``run_identity(cfg, ds)`` is a flat dict stored as ``identity`` in ``OUT/run.json`` when a run first starts. Every
later invocation with the same ``--out`` computes it again; ``identity_changes(old, new)`` names the keys that
differ and the runner refuses to resume (``--overwrite`` starts over), so one ``samples.jsonl`` never mixes two
evaluations. Keys:

- ``dataset``: the loader's fingerprint of the data (``datasets`` fingerprint; hash of the LISA files or the refer
  expressions); ``dataset_samples``: sha256 of every sample's id and query, all shards; ``split``;
- ``ignore_label`` and ``protocol`` (the scoring: segzero's, plus the reference protocol computed beside it) and
  ``shard``;
- ``reasoner_weights``: a content hash of the reasoner's weight files (``weights_digest``); ``reasoner_files``:
  the same for every other file it loads (config, generation config, tokenizer, processor, chat template,
  ``segzero.json``);
- ``prompt`` (the kind actually used) and ``prompt_template`` (hash of its template and example answer);
  ``frame``;
- ``max_new_tokens`` and ``decoding`` (eval always decodes greedily); ``dtype`` (the reasoner's, resolved:
  ``auto`` is recorded as what it picked) and ``device`` (its type: the kernels and the segmenter's own dtype follow
  it); ``backend``;
- ``segmenter`` (a weight-free name, or ``model``) and ``segmenter_weights`` (content hash of its folder's files).

Not part of it: the paths of the data and models (a moved folder with the same content is the same run),
``batch_size`` and ``vllm_window`` (they only group the same computations; a resume already regroups samples into
other batches),
``max_samples`` (a per-invocation limit), ``report`` / ``save_masks`` / ``progress`` (what is written, not what is
predicted), ``gpu_memory_utilization`` and the package version (provenance in ``run.json``, not identity).

Usage::

    from segzero.eval.identity import identity_changes, run_identity
    changed = identity_changes(old_header["identity"], run_identity(cfg, ds))   # [] = the same run
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

# Bytes read at a time while hashing a file (weights are streamed, never loaded whole).
HASH_CHUNK_BYTES = 1 << 20
# Characters of a sha256 hex digest kept in identities (64 bits: collisions are not a practical concern).
DIGEST_CHARS = 16
# A file changed more recently than this (seconds) is hashed again on every call rather than memoised.
MEMO_MIN_AGE_S = 2.0
# Files of a model folder hashed as its weights (``*.index.json`` shard maps go with them).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# Files of a model folder hashed as its other loaded files (config, tokenizer, processor, chat template).
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".jinja", ".tiktoken")
# Files a training checkpoint folder holds that the model does not load (never hashed: optimizer state is large).
TRAINER_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "trainer_state.json")
# Identity keys that differ between the shards of one evaluation (all other keys must agree to merge them).
SHARD_KEYS = ("shard",)
# The decoding eval uses (greedy: no temperature, no sampling).
DECODING = "greedy"

_digest_memo: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """sha256 hex digest of a file's bytes (streamed); a Hugging Face cache link into ``blobs/`` returns the blob's
    name, which is already its content hash (sha256 for weights), without reading it.

    Memoised per process by (path, size, mtime, ctime, inode), so a file rewritten in place is hashed again; a file
    modified less than ``MEMO_MIN_AGE_S`` ago is never memoised (a rewrite within one timestamp tick would keep
    its times).
    """
    path = Path(path)
    if path.is_symlink():
        target = path.resolve()
        if target.parent.name == "blobs":
            return target.name
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key in _digest_memo:
        return _digest_memo[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            h.update(chunk)
    if time.time() - max(st.st_mtime, st.st_ctime) > MEMO_MIN_AGE_S:
        _digest_memo[key] = h.hexdigest()
    return h.hexdigest()


def _is_weight_file(name: str) -> bool:
    return (
        name not in TRAINER_FILES
        and not name.startswith("rng_state")
        and (name.endswith(WEIGHT_SUFFIXES) or name.endswith(".index.json"))
    )


def _is_config_file(name: str) -> bool:
    return name not in TRAINER_FILES and name.endswith(CONFIG_SUFFIXES) and not name.endswith(".index.json")


def local_model_folder(name_or_path: str | Path) -> Path | None:
    """The folder a model reference loads from: a local folder, or a hub id's cached snapshot (resolved offline,
    never downloaded); None when neither exists here."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415

    try:
        cached = try_to_load_from_cache(str(name_or_path), "config.json")
    except ValueError:  # not a valid repo id (e.g. a missing path)
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def folder_digest(folder: Path, *, weights: bool) -> str | None:
    """Content hash of a model folder's top-level weight files (``weights=True``) or its other loaded files
    (``weights=False``): ``"sha256:<16 hex>"`` over the sorted (name, file digest) pairs; None when there are none."""
    pick = _is_weight_file if weights else _is_config_file
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and pick(p.name))
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\t{file_digest(p)}\n".encode())
    return "sha256:" + h.hexdigest()[:DIGEST_CHARS]


def weights_digest(name_or_path: str | Path, *, weights: bool = True) -> str:
    """What identifies a model's weights (``weights=False``: its other loaded files): ``folder_digest`` of the local
    folder or cached hub snapshot; ``"hub:<id>"`` for a hub id that is not in the local cache (nothing to hash yet:
    the runner takes the identity again once the model is loaded); ``"none"`` for a folder without such files."""
    folder = local_model_folder(name_or_path)
    if folder is None:
        return f"hub:{name_or_path}"
    return folder_digest(folder, weights=weights) or "none"


def samples_digest(ds) -> str:
    """sha256 (16 hex) of every sample's id and query in dataset order: changes when samples are added, removed,
    renamed or re-worded."""
    h = hashlib.sha256()
    for s in ds.samples:
        h.update(f"{s.id}\t{s.query}\n".encode())
    return h.hexdigest()[:DIGEST_CHARS]


def resolved_dtype(backend: str, device: str | None, dtype: str | None) -> str:
    """The reasoner dtype a run uses, by name: vLLM's (``bfloat16`` unless given) or ``pick_dtype``'s choice."""
    if backend == "vllm":
        return str(dtype or "bfloat16")
    from segzero.models.reasoner import pick_device, pick_dtype  # noqa: PLC0415

    return str(pick_dtype(pick_device(device), dtype)).removeprefix("torch.")


def segmenter_identity(name: str) -> tuple[str, str | None]:
    """(``segmenter``, ``segmenter_weights``): a weight-free segmenter's canonical name and None, or ``"model"``
    and the weights digest of its folder / hub id."""
    from segzero.models.weightfree import WEIGHT_FREE, is_weightfree  # noqa: PLC0415

    if is_weightfree(name):
        return WEIGHT_FREE[name.lower()].__name__, None
    return "model", weights_digest(name)


def run_identity(cfg, ds) -> dict:
    """The identity of evaluating ``cfg`` (an ``EvalConfig``) on ``ds`` (an ``EvalDataset``); keys as above."""
    from segzero.models.reasoner import expand_shipped, pick_device, resolve_prompt_and_frame  # noqa: PLC0415
    from segzero.prompts import PROMPT_KINDS  # noqa: PLC0415

    reasoner = expand_shipped(cfg.reasoner)
    prompt, frame = resolve_prompt_and_frame(reasoner, prompt=cfg.prompt, frame=cfg.frame)
    template = "\n".join(PROMPT_KINDS[prompt])
    segmenter, segmenter_weights = segmenter_identity(str(cfg.segmenter))
    return {
        "dataset": ds.fingerprint,
        "dataset_samples": samples_digest(ds),
        "split": ds.split,
        "ignore_label": cfg.ignore_label,
        "protocol": cfg.protocol,
        "shard": cfg.shard,
        "reasoner_weights": weights_digest(reasoner),
        "reasoner_files": weights_digest(reasoner, weights=False),
        "prompt": prompt,
        "prompt_template": hashlib.sha256(template.encode()).hexdigest()[:DIGEST_CHARS],
        "frame": list(frame) if isinstance(frame, tuple) else frame,
        "max_new_tokens": int(cfg.max_new_tokens),
        "decoding": DECODING,
        "dtype": resolved_dtype(cfg.backend, cfg.device, cfg.dtype),
        "device": pick_device(cfg.device).split(":")[0],
        "backend": cfg.backend,
        "segmenter": segmenter,
        "segmenter_weights": segmenter_weights,
    }


def identity_changes(old: dict, new: dict, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """The keys (in ``new``'s order, then ``old``'s extra ones) whose values differ between two identities."""
    keys = [*new, *(k for k in old if k not in new)]
    return [k for k in keys if k not in ignore and old.get(k) != new.get(k)]
