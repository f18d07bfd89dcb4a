"""Evaluation throughput at real sizes on one GPU: Qwen2.5-VL-7B + SAM2-hiera-large shapes, random weights.

Prepared for a lent GPU (estimated 7-10 minutes on one H200: model building and saving ~2-3, the HF row ~4 at
batch 32 x 200 tokens, the vLLM row ~2 with its start-up; not yet run on a GPU; nothing is downloaded: both models are built from their
published configurations with random weights, the tokenizer is segzero's tiny one)::

    python benchmarks/eval_gpu.py --out /tmp/eval_gpu            # writes RESULT.json and prints a markdown table
    python benchmarks/eval_gpu.py --tiny --out /tmp/eval_gpu     # the same code at tiny sizes on the CPU (a check)

Work: ReasonSeg-test-sized, ``--samples`` (779) images of ReasonSeg-like sizes (one query each, as the hub's
ReasonSeg_test rows), every completion ``--max-new-tokens`` long (min = max: random weights never stop early;
Seg-Zero-7B's completions are about 100-250 tokens) and then replaced by one fixed valid answer, so SAM2 always
runs. Rows:

- ``hf``: ``segzero eval``'s runner (``run_eval``) with the transformers backend, ``--batch-size``;
- ``vllm`` (when vllm is installed): every request in one ``LLM.generate`` call (one queue, continuous batching),
  then the SAM2 stage (one embedding and one decoder call per image) over the completions.

Each row: samples/s, generation and SAM2 seconds where split, peak GPU memory (torch's peak for ``hf``; vLLM
reserves ``--gpu-memory-utilization`` of the GPU up front, so its row gives ``nvidia-smi``'s used memory). The floor
is what memory bandwidth allows: every decode step reads the weights once for the whole running batch, so
``ceil(samples / batch) * max_new_tokens * weight_bytes / bandwidth`` (``--bandwidth-gbs``, 4800 for an H200),
prefill and KV-cache reads ignored.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

# Published shapes (Qwen/Qwen2.5-VL-7B-Instruct and facebook/sam2-hiera-large config.json files)
QWEN25_VL_7B = {
    "text": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        max_position_embeddings=128000,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
    ),
    "vision": dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=3584,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
}
SAM2_HIERA_LARGE = dict(
    hidden_size=144,
    num_attention_heads=2,
    blocks_per_stage=[2, 6, 36, 4],
    embed_dim_per_stage=[144, 288, 576, 1152],
    num_attention_heads_per_stage=[2, 4, 8, 16],
    window_size_per_stage=[8, 4, 16, 8],
    global_attention_blocks=[23, 33, 43],
    window_positional_embedding_background_size=[7, 7],
)
IMAGE_SIZES = [(1024, 768), (1280, 960), (1920, 1080), (800, 600), (3000, 2000), (640, 480)]


def build_models(out: Path, *, tiny: bool, device: str) -> dict[str, Path]:
    """Random-weight reasoner (7B shapes, or tiny) and segmenter (SAM2-L shapes, or tiny) folders under ``out``."""
    import torch
    import transformers

    from segzero.models.reasoner import write_model_info
    from segzero.models.tiny import build_tiny_models
    from segzero.models.tiny.segmenter import build_tiny_segmenter

    tiny_paths = build_tiny_models(out / "tiny")
    if tiny:
        return tiny_paths
    reasoner, segmenter = out / "reasoner", out / "segmenter"
    base = json.loads((tiny_paths["reasoner"] / "config.json").read_text())
    ids = {k: base[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
    text = {
        **QWEN25_VL_7B["text"],
        "bos_token_id": base["text_config"]["bos_token_id"],
        "eos_token_id": base["text_config"]["eos_token_id"],
        "pad_token_id": base["text_config"]["pad_token_id"],
    }
    config = transformers.Qwen2_5_VLConfig(text_config=text, vision_config=QWEN25_VL_7B["vision"], **ids)
    with torch.device(device):
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(reasoner)
    del model
    for f in (tiny_paths["reasoner"]).iterdir():  # tokenizer, processor and chat template of the tiny model
        if f.name not in ("config.json", "model.safetensors", "generation_config.json", "segzero.json"):
            (reasoner / f.name).write_bytes(f.read_bytes())
    write_model_info(reasoner, frame=840, prompt="segzero", note="random weights, Qwen2.5-VL-7B shapes")
    build_tiny_segmenter(segmenter)  # its preprocessor config (1024 input); the weights are replaced below
    backbone = transformers.Sam2HieraDetConfig(**SAM2_HIERA_LARGE)
    vision = transformers.Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[1152, 576, 288, 144])
    sam = transformers.Sam2Model(transformers.Sam2Config(vision_config=vision))
    sam.save_pretrained(segmenter)
    return {"reasoner": reasoner, "segmenter": segmenter}


def make_data(out: Path, samples: int, *, tiny: bool, seed: int = 0) -> Path:
    """A ReasonSeg-layout save_to_disk folder: ``samples`` images of ReasonSeg-like sizes, one query each."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("image", "text", "mask", "image_id", "ann_id", "img_height", "img_width")}
    for i in range(samples):
        w, h = (160, 120) if tiny else IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        m = np.zeros((h, w), np.uint8)
        m[h // 4 : h // 2, w // 4 : w // 2] = 1
        for k, v in zip(rows, (img, f"object {i}", m, f"im{i}", "0", h, w), strict=True):
            rows[k].append(v)
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(out))
    return out


def gpu_used_mib() -> int | None:
    """nvidia-smi's used memory of GPU 0 (MiB), None without nvidia-smi."""
    try:
        text = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(text.split()[0])


def hf_row(models, data: Path, args, device: str) -> dict:
    """``segzero eval``'s runner with the HF backend (fixed-length generation, fixed answer)."""
    import torch

    from eval_throughput import FixedAnswerReasoner
    from segzero.eval.datasets import load_eval_dataset
    from segzero.eval.runner import EvalConfig, run_eval
    from segzero.models.reasoner import Reasoner
    from segzero.models.segmenter import Segmenter
    from segzero.pipeline import SegZeroPipeline

    inner = Reasoner.from_pretrained(
        models["reasoner"], device=device, max_new_tokens=args.max_new_tokens, frame=56 if args.tiny else 840
    )
    inner.model.generation_config.min_new_tokens = args.max_new_tokens
    pipe = SegZeroPipeline(
        FixedAnswerReasoner(inner),
        Segmenter.from_pretrained(models["segmenter"], device=device),
        batch_size=args.batch_size,
    )
    ds = load_eval_dataset(data)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cfg = EvalConfig(
        data=str(data),
        out=str(args.out / "hf_run"),
        batch_size=args.batch_size,
        overwrite=True,
        reasoner=str(models["reasoner"]),
        segmenter=str(models["segmenter"]),
        progress=False,
        report=False,
        frame=56 if args.tiny else 840,
        max_new_tokens=args.max_new_tokens,
    )
    t = time.perf_counter()
    run_eval(cfg, dataset=ds, pipeline=pipe)
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    del pipe, inner
    return {
        "backend": "hf",
        "samples": len(ds.samples),
        "seconds": wall,
        "samples_per_s": len(ds.samples) / wall,
        "peak_mib": peak,
    }


def vllm_row(models, data: Path, args, device: str) -> dict:
    """Every request in one vLLM call, then the SAM2 stage over the completions."""
    from vllm import SamplingParams

    from eval_throughput import ANSWER
    from segzero.eval.datasets import load_eval_dataset
    from segzero.eval.vllm_backend import VLLMReasoner
    from segzero.models.segmenter import Segmenter
    from segzero.pipeline import SegZeroPipeline

    reasoner = VLLMReasoner.from_pretrained(
        str(models["reasoner"]), max_new_tokens=args.max_new_tokens, gpu_memory_utilization=args.gpu_memory_utilization
    )
    ds = load_eval_dataset(data)
    images = [ds.image(s) for s in ds.samples]
    params = SamplingParams(
        temperature=0.0, max_tokens=args.max_new_tokens, min_tokens=args.max_new_tokens, ignore_eos=True
    )
    t = time.perf_counter()
    requests = [reasoner.request(im, s.query) for im, s in zip(images, ds.samples, strict=True)]
    reasoner.llm.generate(requests, params, use_tqdm=False)
    gen = time.perf_counter() - t
    used = gpu_used_mib()
    pipe = SegZeroPipeline(reasoner=reasoner, segmenter=Segmenter.from_pretrained(models["segmenter"], device=device))
    t2 = time.perf_counter()
    for start in range(0, len(images), 64):
        pipe.segment_many(images[start : start + 64], [ANSWER] * len(images[start : start + 64]))
    sam = time.perf_counter() - t2
    wall = gen + sam
    return {
        "backend": "vllm",
        "samples": len(images),
        "seconds": wall,
        "generate_s": gen,
        "sam2_s": sam,
        "samples_per_s": len(images) / wall,
        "nvidia_smi_used_mib": used,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="eval_gpu_")))
    ap.add_argument("--samples", type=int, default=779, help="ReasonSeg test size")
    ap.add_argument("--batch-size", type=int, default=32, help="HF generate batch")
    ap.add_argument("--max-new-tokens", type=int, default=200, help="every completion's length")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.6, help="vLLM's share (SAM2 shares the GPU)")
    ap.add_argument("--bandwidth-gbs", type=float, default=4800.0, help="GPU memory bandwidth for the floor")
    ap.add_argument("--backends", default="hf,vllm", help="comma-separated rows to run")
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU: a check of this script")
    args = ap.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    models = build_models(args.out / "models", tiny=args.tiny, device=device)
    data = make_data(args.out / "data", args.samples, tiny=args.tiny)
    result = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "setup_s": 0.0, "rows": []}
    result["setup_s"] = time.perf_counter() - t
    for backend in args.backends.split(","):
        if backend == "vllm":
            from segzero.eval.vllm_backend import vllm_available

            if not vllm_available() or device != "cuda":
                result["rows"].append({"backend": "vllm", "skipped": "vllm not installed or no GPU"})
                continue
        row = (hf_row if backend == "hf" else vllm_row)(models, data, args, device)
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    weights = sum(p.stat().st_size for p in Path(models["reasoner"]).glob("*.safetensors"))
    steps = math.ceil(args.samples / args.batch_size) * args.max_new_tokens
    result["floor"] = {
        "weight_bytes": weights,
        "decode_steps_at_batch": steps,
        "seconds": steps * weights / (args.bandwidth_gbs * 1e9),
        "batch": args.batch_size,
    }
    (args.out / "RESULT.json").write_text(json.dumps(result, indent=1))
    print("| backend | samples | seconds | samples/s | peak / used MiB |\n|---|---:|---:|---:|---:|")
    for r in result["rows"]:
        if "skipped" in r:
            print(f"| {r['backend']} | - | - | - | {r['skipped']} |")
        else:
            mem = r.get("peak_mib") or r.get("nvidia_smi_used_mib")
            print(f"| {r['backend']} | {r['samples']} | {r['seconds']:.1f} | {r['samples_per_s']:.2f} | {mem} |")
    print(f"floor at batch {args.batch_size}: {result['floor']['seconds']:.1f} s of decode weight reads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
