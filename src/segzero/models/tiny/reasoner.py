"""A tiny, random-weight Qwen2.5-VL (or Qwen3-VL) reasoner for offline tests, benchmarks and setup checks.

``build_tiny_reasoner(path)`` writes a folder that loads exactly like ``Qwen/Qwen2.5-VL-7B-Instruct`` or
``Ricky06662/Seg-Zero-7B`` does (``AutoModelForImageTextToText.from_pretrained(path)``, the tokenizer, the
chat template and the image processor config), but is a few MB and builds in about a second:

- ``Qwen2_5_VLForConditionalGeneration`` from a ``Qwen2_5_VLConfig`` with tiny text and vision towers
  (``arch="qwen3_vl"``: a ``Qwen3VLForConditionalGeneration``, see ``segzero.models.tiny.arches``), weights drawn
  from a seeded generator (the same seed gives the same weights);
- a byte-level BPE tokenizer trained locally with ``tokenizers`` on a small built-in corpus (prompt text,
  ``<think>``/``<answer>`` tags, JSON boxes and points), carrying Qwen2.5-VL's special tokens
  (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, ``<|vision_start|>``, ``<|image_pad|>``, ...) and its
  chat template;
- ``preprocessor_config.json`` with Qwen2-VL's image preprocessing (patch 14, merge 2, CLIP mean/std).

The output of such a model is random text (mostly unparseable); tests use it to exercise the loading,
batching and generation code paths, not the answers. ``build_tiny_reasoner(path, answer=TAUGHT_ANSWER)``
additionally teaches it (``segzero.models.tiny.teach``) to write one fixed completion for any image and query at
small frames (28-112 px), so the whole reason -> parse -> SAM path can be tested; ``build_answering_reasoner`` is
that model at the size that learns it.

Usage::

    from segzero.models.tiny.reasoner import build_tiny_reasoner
    build_tiny_reasoner("/tmp/tiny/reasoner")
"""

from __future__ import annotations

from pathlib import Path

from segzero.models.tiny.teach import TAUGHT_ANSWER, teach_answer

# Qwen2.5-VL's special tokens in the order of their ids in the real tokenizer (151643 ...).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The chat template shipped with Qwen2-VL / Qwen2.5-VL (chat_template.json of the hub checkpoints).
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenisation regex (the same split as the real tokenizer).
_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# The same split with runs of up to 3 digits kept together (``number_tokens=True``): with the numbers in the corpus,
# every coordinate up to ``NUMBER_TOKEN_MAX`` becomes one token, as in GPT-4-style tokenizers.
_PRETOKENIZE_REGEX_NUMBERS = _PRETOKENIZE_REGEX.replace(r"\p{N}|", r"\p{N}{1,3}|", 1)
NUMBER_TOKEN_MAX = 255

# A small corpus so that common prompt words, tags and JSON punctuation become single tokens.
_CORPUS: tuple[str, ...] = (
    "You are a helpful assistant.",
    "Please find 'the red cup on the left' with bbox and points.",
    "Compare the difference between objects and find the most closely matched one.",
    "Compare the difference between object(s) and find the most closely matched object(s).",
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.",
    "Output the one bbox and points of two largest inscribed circles inside the interested object in JSON format.",
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format.",
    "i.e., <think> thinking process here </think><answer>{Answer}</answer>",
    "<think> The user asks for the dog. The dog is on the right side of the image. </think>",
    '<answer>{"bbox": [10,100,200,210], "points_1": [30,110], "points_2": [35,180]}</answer>',
    "<answer>{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}</answer>",
    '<answer>[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], '
    '"point_2d": [302,410]}]</answer>',
    "what can I drink if I am thirsty? the man holding an umbrella, a person, a car, a cat, the woman in white",
    "0 1 2 3 4 5 6 7 8 9 10 20 30 40 50 60 70 80 90 100 200 300 400 500 600 700 800 840",
)


# The answering model is wider and deeper than the plain tiny one: its answer must not hinge on the query, and
# two-layer models answered some queries differently.
ANSWERING_HIDDEN_SIZE = 128
ANSWERING_NUM_LAYERS = 3


def _train_tokenizer(vocab_size: int, extra_corpus: tuple[str, ...] = (), *, number_tokens: bool = False):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``_CORPUS`` (+ ``extra_corpus``); special tokens get ids 0..13.

    ``number_tokens``: digits are pre-split in runs of up to 3 (not one by one, as Qwen does) and the numbers
    0..``NUMBER_TOKEN_MAX`` are added to the corpus, so that each of them is one token (given the vocabulary room).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(_PRETOKENIZE_REGEX_NUMBERS if number_tokens else _PRETOKENIZE_REGEX), behavior="isolated"
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(_CORPUS) + list(extra_corpus)
    if number_tokens:
        corpus.append(" ".join(str(i) for i in range(NUMBER_TOKEN_MAX + 1)))
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    return tok


def build_tiny_reasoner(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_hidden_size: int = 32,
    vision_depth: int = 2,
    answer: str | None = None,
    frame: int = 56,
    intermediate_size: int | None = None,
    vision_intermediate_size: int | None = None,
    extra_corpus: tuple[str, ...] = (),
    note: str = "tiny random-weight test model (segzero.models.tiny)",
    rope_theta: float | None = None,
    vision_rope_theta: float = 10_000.0,
    arch: str = "qwen2_5_vl",
    number_tokens: bool = False,
    number_init: bool = False,
    patch_size: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a tiny random Qwen2.5-VL (model, tokenizer, chat template, image processor config) to ``path``.

    ``vocab_size`` is the BPE vocabulary size (special tokens included); ``hidden_size``/``num_layers`` size
    the text decoder; ``vision_hidden_size``/``vision_depth`` the vision tower (patch 14, merge 2, as in
    Qwen2.5-VL). The same ``seed`` gives the same weights. ``answer``: if given, ``teach_answer`` makes the
    model write it (then ``<|im_end|>``) for any input at small frames. ``frame`` is recorded in the folder's
    ``segzero.json`` (the frame ``Reasoner.from_pretrained`` uses by default). ``rope_theta`` /
    ``vision_rope_theta`` are the RoPE bases of the text decoder and of the vision tower (None: the architecture's
    own, see ``segzero.models.tiny.arches.ARCHES``). Returns ``path``.

    ``arch`` picks the architecture (``ARCHES``): ``"qwen2_5_vl"`` (Qwen2.5-VL: patch 14, a vision tower with
    relative 2-D RoPE only, M-RoPE sections t/h/w = 2/3/3 of the 8 frequency pairs of a 16-dim head) or
    ``"qwen3_vl"`` (Qwen3-VL: patch 16, a learned absolute position embedding in the vision tower, deepstack
    features, interleaved M-RoPE over the 16 pairs of a 32-dim head; ``frame`` must be a multiple of 32).
    ``number_tokens``: whole numbers up to ``NUMBER_TOKEN_MAX`` are single tokens (see ``_train_tokenizer``; give
    the vocabulary about 400 more entries), instead of Qwen's one token per digit. ``number_init`` (with
    ``number_tokens``): start the embeddings and output rows of those number tokens from ``fourier_number_rows``
    (near values look alike, as in a pretrained model) instead of independent random vectors. ``patch_size``: the
    vision patch side in pixels (None: the architecture's own, 14 or 16); smaller patches give more image tokens
    per frame (frame / (2 x patch) per side) at the same image size.
    """
    import torch
    from transformers import AutoModelForImageTextToText, PreTrainedTokenizerFast

    from segzero.models.processor import write_image_processor_config
    from segzero.models.reasoner import write_model_info
    from segzero.models.tiny.arches import ARCHES, model_config

    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {sorted(ARCHES)}, got {arch!r}")
    if answer is not None and arch != "qwen2_5_vl":
        raise ValueError("teaching a fixed answer (answer=...) is implemented for arch 'qwen2_5_vl' only")
    spec = ARCHES[arch]
    patch = int(patch_size or spec["patch_size"])
    factor = patch * 2
    if frame % factor:
        raise ValueError(f"frame {frame} is not a multiple of {factor} (patch {patch} x merge 2)")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    backend = _train_tokenizer(vocab_size, extra_corpus, number_tokens=number_tokens)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    tokenizer.padding_side = "left"
    tokenizer.chat_template = QWEN_VL_CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    real_vocab = len(tokenizer)

    config = model_config(
        spec,
        ids,
        vocab_size=real_vocab,
        hidden_size=hidden_size,
        num_layers=num_layers,
        intermediate_size=intermediate_size or 2 * hidden_size,
        vision_hidden_size=vision_hidden_size,
        vision_depth=vision_depth,
        vision_intermediate_size=vision_intermediate_size or 2 * vision_hidden_size,
        rope_theta=spec["rope_theta"] if rope_theta is None else float(rope_theta),
        vision_rope_theta=float(vision_rope_theta),
        frame=frame,
        patch_size=patch,
    )
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).eval()
    if number_init:
        if not number_tokens:
            raise ValueError("number_init needs number_tokens=True")
        _init_number_rows(model, tokenizer)
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.do_sample = False
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)  # also writes the chat template (chat_template.jinja)
    write_image_processor_config(path, spec["preprocessor"](frame, patch))
    write_model_info(path, frame=frame, prompt="segzero", note=note)
    if answer is not None:
        teach_answer(path, answer, seed=seed, progress=progress)
    return path


def fourier_number_rows(values, dim: int, *, scale: float, min_period: float = 4.0, max_period: float = 1024.0):
    """(len(values), dim) rows ``scale * [sin(2 pi v / P_k), cos(2 pi v / P_k)]`` over ``dim // 2`` periods ``P_k``
    spaced geometrically from ``min_period`` to ``max_period``: rows of near numbers are near, far ones differ."""
    import torch

    v = torch.as_tensor(values, dtype=torch.float32)[:, None]
    periods = torch.logspace(
        torch.log10(torch.tensor(min_period)), torch.log10(torch.tensor(max_period)), dim // 2, dtype=torch.float32
    )
    angles = 2 * torch.pi * v / periods[None, :]
    return scale * torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def _init_number_rows(model, tokenizer, *, fraction: float = 0.5) -> None:
    """Overwrite the first ``fraction`` of the input-embedding and output rows of the tokens "0".."NUMBER_TOKEN_MAX"
    with ``fourier_number_rows`` (same norm as the random rows); numbers missing from the vocabulary are skipped."""
    import torch

    ids, values = [], []
    for v in range(NUMBER_TOKEN_MAX + 1):
        t = tokenizer.convert_tokens_to_ids(str(v))
        if isinstance(t, int) and t != tokenizer.unk_token_id and tokenizer.convert_ids_to_tokens(t) == str(v):
            ids.append(t)
            values.append(v)
    with torch.no_grad():
        for table in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            dim = int(table.shape[1] * fraction) // 2 * 2
            row_norm = float(table[ids].norm(dim=1).mean())
            rows = fourier_number_rows(values, dim, scale=1.0)
            rows = rows * (row_norm / float(rows.norm(dim=1).mean()))
            table[ids, :dim] = rows.to(table.dtype)


def build_answering_reasoner(path: str | Path, *, seed: int = 0, progress: bool = False) -> Path:
    """A tiny reasoner (``ANSWERING_*`` size) taught to answer ``TAUGHT_ANSWER`` to any image and query.

    The teaching takes about 2 minutes on 2 CPU cores; ``progress`` shows a tqdm bar of its steps.
    """
    return build_tiny_reasoner(
        path,
        seed=seed,
        answer=TAUGHT_ANSWER,
        hidden_size=ANSWERING_HIDDEN_SIZE,
        num_layers=ANSWERING_NUM_LAYERS,
        progress=progress,
    )


def perturb_weights(model_dir: str | Path, *, delta: float = 0.01) -> None:
    """Rewrite the first float tensor of ``model_dir/model.safetensors`` in place (+``delta``): new weights under
    the same config.json, as when a checkpoint folder is overwritten by another training run."""
    import torch
    from safetensors.torch import load_file, save_file

    path = Path(model_dir) / "model.safetensors"
    state = load_file(str(path))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + delta * torch.ones_like(state[name])
    save_file(state, str(path), metadata={"format": "pt"})
