"""The processor handed to TRL's ``GRPOTrainer``: segzero's model processor, seen by TRL as a ``ProcessorMixin``.

TRL accepts only a tokenizer or a ``transformers.ProcessorMixin`` as ``processing_class`` and calls on it:
``apply_chat_template(conversation=[...], tokenize=True, return_dict=True, add_generation_prompt=True)``
(unpadded ``input_ids`` per prompt plus the image fields), ``apply_chat_template(messages, tokenize=False)``
(prompt text), ``__call__(text=[...], images=[[img], ...], padding=True, return_tensors="pt")``,
``batch_decode``, ``.tokenizer`` and ``save_pretrained`` (checkpoints). segzero loads processors with
``segzero.models.processor.load_processor``: the stock ``AutoProcessor`` when torchvision is present
(already a ``ProcessorMixin``; used as is) or ``ImageOnlyProcessor`` otherwise, which this module wraps:
every call is delegated to it, images are flattened in order, and saving writes the tokenizer files and
``preprocessor_config.json`` exactly as the tiny-model builder does (``tokenizer.save_pretrained`` +
``write_image_processor_config``), so a checkpoint folder loads back through ``load_processor``.

Usage::

    from segzero.train.processing import load_training_processor
    processor = load_training_processor("path/to/model")
"""

from __future__ import annotations

from pathlib import Path

from transformers import ProcessorMixin


def _flatten_images(images) -> list:
    """``[[img, ...] | None, ...]`` (TRL's per-prompt lists) or ``[img, ...]`` -> flat list of images, in order."""
    flat: list = []
    for item in images or []:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            flat.extend(x for x in item if x is not None)
        else:
            flat.append(item)
    return flat


def _message_images(conversation: list[dict]) -> list:
    """Images of one chat conversation, in order of appearance (``{"type": "image", "image": ...}`` items)."""
    out = []
    for message in conversation:
        content = message.get("content")
        if isinstance(content, list):
            out.extend(part["image"] for part in content if part.get("type") == "image" and "image" in part)
    return out


class TrlProcessor(ProcessorMixin):
    """A ``ProcessorMixin`` front for ``segzero.models.processor.ImageOnlyProcessor`` (see the module docstring).

    Attributes TRL reads: ``tokenizer``, ``image_processor`` (``merge_size`` etc.), ``chat_template``.
    """

    # The sub-processors are attributes of the wrapped processor; ProcessorMixin.__init__ is not used.
    def __init__(self, inner):  # noqa: D107 - documented on the class
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.image_processor = inner.image_processor
        self.image_token = inner.image_token
        self.image_token_id = inner.image_token_id
        self.chat_template = inner.chat_template

    def __repr__(self) -> str:
        return f"TrlProcessor({type(self.inner).__name__})"

    def __call__(self, text=None, images=None, **kwargs):
        """Delegates to the wrapped processor with ``images`` flattened (TRL passes one list per prompt)."""
        flat = _flatten_images(images)
        return self.inner(text=text, images=flat or None, **kwargs)

    def apply_chat_template(self, conversation, chat_template=None, tools=None, **kwargs):
        """The processor's chat template (not the tokenizer's own: for Qwen2.5-VL that is the tool-calling one, which
        cannot render an image message); with ``tokenize=True, return_dict=True`` also the image fields.

        ``conversation`` is one conversation (list of messages) or a batch (list of conversations). Tokenized
        output is unpadded (``input_ids`` a list of lists) as TRL expects; image fields are torch tensors.
        """
        tokenize = kwargs.pop("tokenize", False)
        return_dict = kwargs.pop("return_dict", False)
        kwargs.pop("padding", None)
        kwargs.pop("return_tensors", None)
        batched = bool(conversation) and isinstance(conversation[0], list)
        conversations = conversation if batched else [conversation]
        render_kwargs = {k: v for k, v in kwargs.items() if k in ("add_generation_prompt", "continue_final_message")}
        texts = [
            self.tokenizer.apply_chat_template(
                conv, chat_template=chat_template or self.chat_template, tools=tools, tokenize=False, **render_kwargs
            )
            for conv in conversations
        ]
        if not tokenize:
            return texts if batched else texts[0]
        images = [img for conv in conversations for img in _message_images(conv)]
        enc = self.inner(text=texts, images=images or None, padding=False, return_tensors=None)
        import torch

        out = {
            "input_ids": [list(ids) for ids in enc["input_ids"]],
            "attention_mask": [list(m) for m in enc["attention_mask"]],
            "mm_token_type_ids": [list(m) for m in enc["mm_token_type_ids"]],
        }
        if images:
            out["pixel_values"] = torch.as_tensor(enc["pixel_values"])
            out["image_grid_thw"] = torch.as_tensor(enc["image_grid_thw"])
        if not return_dict:
            return out["input_ids"] if batched else out["input_ids"][0]
        return out

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(sequences, **kwargs)

    def decode(self, ids, **kwargs) -> str:
        return self.tokenizer.decode(ids, **kwargs)

    def save_pretrained(self, save_directory, **_unused) -> list[str]:
        """Tokenizer files + ``preprocessor_config.json``, as ``segzero.models.tiny.reasoner`` writes them."""
        from segzero.models.processor import write_image_processor_config

        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        files = list(self.tokenizer.save_pretrained(save_directory))
        files.append(str(write_image_processor_config(save_directory, self.image_processor)))
        return files


def load_training_processor(path: str | Path, **kwargs):
    """The processor of a model folder or hub id, in a form ``GRPOTrainer`` accepts.

    Loads with ``segzero.models.processor.load_processor`` (left padding for generation) and wraps it in
    ``TrlProcessor`` unless it already is a ``ProcessorMixin``.
    """
    from segzero.models.processor import load_processor

    processor = load_processor(path, **kwargs)
    if isinstance(processor, ProcessorMixin):
        return processor
    processor.tokenizer.padding_side = "left"
    return TrlProcessor(processor)
