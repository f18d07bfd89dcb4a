"""The reasoner and segmenter interfaces (``segzero.models.base``): every implementation satisfies its protocol.

Each real class is checked twice: ``isinstance`` against the ``runtime_checkable`` protocol (every member present)
and, for each protocol method, the implementation's signature against the protocol's (parameter names, kinds and
defaults), which ``isinstance`` does not look at. The models are the tiny ones, loaded as real checkpoints are.
Run: ``OMP_NUM_THREADS=1 pytest tests/test_models_base.py -q``
"""

from __future__ import annotations

import inspect

import pytest

from segzero.models.base import ReasonerProtocol, SegmenterProtocol


def _protocol_methods(protocol) -> list[str]:
    """The protocol's own methods (properties and data members excluded)."""
    return [name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")]


def _signature(fn) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter but ``self``."""
    params = inspect.signature(fn).parameters.values()
    return [(p.name, p.kind, p.default) for p in params if p.name != "self"]


def signature_mismatches(obj, protocol) -> list[str]:
    """The protocol methods that ``obj``'s class lacks or defines with another signature than the protocol's."""
    return [
        name
        for name in _protocol_methods(protocol)
        if not hasattr(type(obj), name) or _signature(getattr(type(obj), name)) != _signature(getattr(protocol, name))
    ]


def _hf_reasoner(models):
    from segzero.models.reasoner import Reasoner

    return Reasoner.from_pretrained(models["reasoner"], device="cpu")


def _vllm_reasoner(models):  # the dataclass itself: starting a vLLM engine needs a GPU and vllm
    from segzero.eval.vllm_backend import VLLMReasoner

    return VLLMReasoner(llm=None, processor=None, name="x")


def _sam2(models):
    from segzero.models.segmenter import Segmenter

    return Segmenter.from_pretrained(models["segmenter"], device="cpu")


def _weightfree(name):
    from segzero.models.weightfree import load_weightfree

    return lambda models: load_weightfree(name)


@pytest.mark.parametrize(
    "make, protocol",
    [
        (_hf_reasoner, ReasonerProtocol),  # the transformers reasoner
        (_vllm_reasoner, ReasonerProtocol),  # the vLLM reasoner of segzero eval --backend vllm
        (_sam2, SegmenterProtocol),  # SAM2
        (_weightfree("color"), SegmenterProtocol),  # the shapes world's exact colour regions
        (_weightfree("grabcut"), SegmenterProtocol),  # OpenCV GrabCut
    ],
)
def test_implementations_satisfy_their_protocol(make, protocol, tiny_models):
    obj = make(tiny_models)
    assert isinstance(obj, protocol)
    assert signature_mismatches(obj, protocol) == []


class _Drifted:
    """A segmenter whose ``embed`` lost its keyword and whose ``predict`` renamed a parameter."""

    description = "drifted"
    num_embeddings = 0
    image_size = None

    def embed(self, images, batch_size=None):
        return []

    def predict(self, box=None, points=None, labels=None, *, multimask=True, embedding=None):
        raise NotImplementedError

    def set_image(self, image):
        pass

    def set_embedding(self, embedding):
        pass

    def reset_image(self):
        pass


class _EmbedOnly:
    """A segmenter that can embed but not decode prompts."""

    description = "none"
    num_embeddings = 0

    def embed(self, images, *, batch_size=None):
        return []


@pytest.mark.parametrize(
    "obj, protocol, is_instance, mismatches",
    [
        (_Drifted(), SegmenterProtocol, True, ["embed", "predict"]),  # members present, signatures drifted
        (_EmbedOnly(), SegmenterProtocol, False, ["predict", "set_image", "set_embedding", "reset_image"]),  # missing
        (_Drifted(), ReasonerProtocol, False, ["generate"]),  # a segmenter is no reasoner
    ],
)
def test_the_checks_catch_what_differs(obj, protocol, is_instance, mismatches):
    assert isinstance(obj, protocol) is is_instance
    assert signature_mismatches(obj, protocol) == mismatches
