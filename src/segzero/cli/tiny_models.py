"""``segzero tiny-models``: build the tiny random-weight reasoner and segmenter used by tests and setup checks.

    segzero tiny-models --out /tmp/tiny
    segzero segment --image photo.jpg --query "the cat" --reasoner /tmp/tiny/reasoner \\
        --segmenter /tmp/tiny/segmenter --frame 112 --max-new-tokens 32 --out out/

Writes ``DIR/reasoner`` (tiny Qwen2.5-VL, a locally trained tokenizer with Qwen's special tokens and chat
template) and ``DIR/segmenter`` (tiny SAM2). Both load through the same ``from_pretrained`` code as the real
checkpoints. The reasoner's answers are random text ("answer could not be parsed"), unless ``--answering``:
then it is taught (about 2 minutes on 2 CPU cores, with a progress bar) to give one fixed, parseable answer at small frames (use ``--frame 56``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tiny-models",
        help="build tiny offline models (random weights) for tests and setup checks",
        description="Write DIR/reasoner (tiny Qwen2.5-VL) and DIR/segmenter (tiny SAM2); a few MB, seconds "
        "(--answering: about 2 minutes more).",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="weight seed (default: %(default)s)")
    p.add_argument(
        "--answering",
        action="store_true",
        help="teach the reasoner one fixed parseable answer (for frames of 28-112 px, e.g. segment --frame 56); "
        "about 2 minutes on 2 CPU cores, with a progress bar",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from segzero.errors import UserError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out exists and is not a folder: {out}")
    from segzero.models.tiny import build_tiny_models

    paths = build_tiny_models(out, seed=args.seed, answering=args.answering, progress=True)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
