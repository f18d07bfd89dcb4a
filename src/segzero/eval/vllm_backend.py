"""vLLM generation for ``segzero eval --backend vllm``: a drop-in for ``Reasoner.generate``.

``VLLMReasoner`` builds exactly the prompts the HF ``Reasoner`` builds (``segzero.prompts.build_messages`` through
the model's own chat template, the image resized to the ``frame``), and generates them with vLLM's offline
``LLM.generate`` using multi-modal inputs ``{"prompt": text, "multi_modal_data": {"image": PIL}}`` and greedy
``SamplingParams(temperature=0, max_tokens=...)``. The pipeline then parses and segments the completions as
usual, so the records format is the same as with the HF backend.

Usage (GPU machine with ``pip install segzero[vllm]``)::

    segzero eval --data Ricky06662/ReasonSeg_test --backend vllm --out runs/x
    from segzero.eval.vllm_backend import VLLMReasoner
    r = VLLMReasoner.from_pretrained("Ricky06662/Seg-Zero-7B"); r.generate([img], ["the red cup"])

Not runnable in CPU-only environments: without vllm installed ``from_pretrained`` raises ``UserError``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from segzero.errors import UserError
from segzero.geometry import DEFAULT_FRAME


def vllm_available() -> bool:
    """True when the ``vllm`` package can be imported."""
    return importlib.util.find_spec("vllm") is not None


@dataclass
class VLLMReasoner:
    """A vLLM engine plus the HF processor (for the chat template); same ``generate`` contract as ``Reasoner``."""

    llm: Any
    processor: Any
    name: str
    prompt: str = "segzero"
    frame: int | tuple[int, int] = DEFAULT_FRAME
    max_new_tokens: int = field(default=1024, metadata={"help": "generation length limit in tokens"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy"})
    system: str | None = field(default=None, metadata={"help": "system prompt; None = the template default"})

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        prompt: str | None = None,
        frame: int | tuple[int, int] | None = None,
        max_new_tokens: int = 1024,
        temperature: float = 0.0,
        dtype: str | None = None,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int = 8192,
        tensor_parallel_size: int = 1,
        seed: int = 0,
    ) -> VLLMReasoner:
        """Start a vLLM engine for ``name_or_path`` (hub id or folder). ``UserError`` when vllm is missing."""
        if not vllm_available():
            raise UserError("--backend vllm needs the vllm package (pip install 'segzero[vllm]'), not installed here")
        from vllm import LLM  # noqa: PLC0415

        from segzero.models.processor import load_processor  # noqa: PLC0415
        from segzero.models.reasoner import resolve_model_source, resolve_prompt_and_frame  # noqa: PLC0415

        source = resolve_model_source(name_or_path, what="reasoner")
        prompt, frame = resolve_prompt_and_frame(source, prompt=prompt, frame=frame)
        llm = LLM(
            model=source,
            dtype=dtype or "bfloat16",
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            limit_mm_per_prompt={"image": 1},
            tensor_parallel_size=tensor_parallel_size,
            seed=seed,
        )
        return cls(
            llm=llm,
            processor=load_processor(source),
            name=source,
            prompt=prompt,
            frame=frame,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )

    def request(self, image, query: str) -> dict:
        """One vLLM prompt dict: chat-formatted text (generation prompt appended) and the frame-sized image."""
        from segzero.images import ensure_loaded, resize_to_frame  # noqa: PLC0415
        from segzero.prompts import build_messages  # noqa: PLC0415

        frame_image = resize_to_frame(ensure_loaded(image), self.frame)  # the pipeline's images are loaded already
        messages = build_messages(frame_image, query, kind=self.prompt, system=self.system)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return {"prompt": text, "multi_modal_data": {"image": frame_image}}

    def generate(self, images: list, queries: list[str], **overrides) -> list[str]:
        """Raw completions, one per (image, query), in input order. vLLM schedules its own batches, so a
        ``batch_size`` override is accepted and ignored; ``max_new_tokens``/``temperature`` override per call."""
        from vllm import SamplingParams  # noqa: PLC0415

        if len(images) != len(queries):
            raise UserError(f"got {len(images)} images but {len(queries)} queries")
        params = SamplingParams(
            temperature=float(overrides.get("temperature", self.temperature)),
            max_tokens=int(overrides.get("max_new_tokens", self.max_new_tokens)),
        )
        requests = [self.request(im, q) for im, q in zip(images, queries, strict=True)]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]
