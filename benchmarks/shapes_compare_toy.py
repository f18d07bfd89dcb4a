"""Can the shapes reasoner's text decoder learn to compare listed numbers at all? A toy, from scratch, in minutes.

    OMP_NUM_THREADS=1 python benchmarks/shapes_compare_toy.py --out benchmarks/shapes_compare_toy.md

The shapes model lists every shape with its box and area, then must name "the largest shape": a comparison of two
or three listed numbers. Trained from a perception warm-up, it does not learn that comparison in thousands of
gt-answer steps (``benchmarks/shapes_decision_probe.md``). This toy asks whether the architecture is the limit: a
fresh text decoder of the shipped model's size (Qwen3, hidden 128, 4 layers, 4 heads of 32, 2 key/value heads) with
whole-number tokens 0-255 (input and output rows starting from Fourier features of the value, as
``segzero.models.tiny.reasoner.fourier_number_rows`` does for the shapes model), trained on listings alone::

    <item 1> x1 y1 x2 y2 area 45 ; <item 2> x1 y1 x2 y2 area 71 ; <item 3> ... largest :  ->  71   (--target value)
                                                                                      ->  <item 2> (--target index)

2-3 items, areas 20-149 with the winner at least 1.2x the runner-up (as the world's superlatives are clear), box
numbers random, "largest" or "smallest" at random; the loss is on the answer token alone; batch 64, AdamW lr 2e-3.
Accuracy on 512 fresh listings every ``--every`` steps. Nothing is downloaded; a run takes about a minute per
target on one core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
from pathlib import Path

NUMBERS = 256
AREA, SEMI, LARGEST, SMALLEST, COLON, ITEM = range(NUMBERS, NUMBERS + 6)  # ITEM .. ITEM + 2: the item markers
VOCAB = NUMBERS + 16


def build_decoder(seed: int, *, fourier: bool):
    """A fresh Qwen3 decoder of the shapes model's text size; number rows from Fourier features when ``fourier``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from segzero.models.tiny.reasoner import fourier_number_rows

    torch.manual_seed(seed)
    cfg = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    model = Qwen3ForCausalLM(cfg)
    if fourier:  # the first half of each number row, at the random rows' norm (as the shapes model's init)
        with torch.no_grad():
            for table in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
                rows = fourier_number_rows(list(range(NUMBERS)), table.shape[1] // 2, scale=1.0)
                norm = float(table[:NUMBERS].norm(dim=1).mean()) / float(rows.norm(dim=1).mean())
                table[:NUMBERS, : rows.shape[1]] = rows * norm
    return model


def listings(rng, n: int, *, target: str, fillers: int = 4, ratio: float = 1.2):
    """``n`` toy listings -> (input ids (n, L) left-padded, answer ids (n,)); ``fillers`` random numbers (the box)
    before each area; see the module docstring."""
    import numpy as np
    import torch

    seqs, answers = [], []
    for _ in range(n):
        k = int(rng.integers(2, 4))
        while True:
            areas = rng.integers(20, 150, k)
            s = np.sort(areas)
            if s[-1] >= ratio * s[-2] and s[1] >= ratio * s[0]:
                break
        largest = bool(rng.integers(2))
        seq: list[int] = []
        for i in range(k):
            seq += [ITEM + i, *map(int, rng.integers(0, 128, fillers)), AREA, int(areas[i]), SEMI]
        seq += [LARGEST if largest else SMALLEST, COLON]
        win = int(np.argmax(areas) if largest else np.argmin(areas))
        seqs.append(seq)
        answers.append(int(areas[win]) if target == "value" else ITEM + win)
    width = max(map(len, seqs))
    ids = torch.full((n, width), SEMI)
    for i, seq in enumerate(seqs):
        ids[i, width - len(seq) :] = torch.tensor(seq)
    return ids, torch.tensor(answers)


def curve(
    target: str, *, steps: int, every: int, fourier: bool, fillers: int = 4, seed: int = 0
) -> list[tuple[int, float]]:
    """(step, accuracy on 512 fresh listings) every ``every`` steps."""
    import numpy as np
    import torch

    model = build_decoder(seed, fourier=fourier)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    out = []
    for step in range(1, steps + 1):
        ids, y = listings(rng, 64, target=target, fillers=fillers)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids).logits[:, -1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            ids, y = listings(rng, 512, target=target, fillers=fillers)
            with torch.no_grad():
                acc = float((model(input_ids=ids).logits[:, -1].argmax(-1) == y).float().mean())
            out.append((step, acc))
            print(f"{target} step {step}: {acc:.3f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--targets", nargs="+", default=["value", "index"], choices=["value", "index"])
    p.add_argument("--random-init", action="store_true", help="random number rows instead of Fourier features")
    p.add_argument(
        "--fillers",
        type=int,
        default=4,
        help="random numbers before each area (4: a box; the shapes model lists 8 numbers and 2 words before it)",
    )
    p.add_argument("--out", type=Path, help="markdown table (default: print only)")
    args = p.parse_args(argv)
    curves = {
        t: curve(t, steps=args.steps, every=args.every, fourier=not args.random_init, fillers=args.fillers)
        for t in args.targets
    }
    steps = [s for s, _ in next(iter(curves.values()))]
    lines = [
        "| target | " + " | ".join(f"step {s}" for s in steps) + " |",
        "|---|" + "---:|" * len(steps),
        *(f"| {t} | " + " | ".join(f"{100 * a:.1f}" for _, a in c) + " |" for t, c in curves.items()),
    ]
    text = (
        "# Toy: can the shapes model's text decoder learn to compare listed numbers?\n\n"
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, CPU\n"
        f"- command: `OMP_NUM_THREADS=1 python {shlex.join(['benchmarks/shapes_compare_toy.py', *sys.argv[1:]])}`\n"
        "- accuracy % on 512 fresh listings (chance: about 1 in 2.5 for the index, lower for the value); see the "
        "script's docstring for the task\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
