"""Teaching a tiny reasoner one fixed answer, so that tests can run the whole reason -> parse -> SAM path offline.

    from segzero.models.tiny.teach import TAUGHT_ANSWER, teach_answer, wrong_probes
    teach_answer("/tmp/tiny/reasoner", TAUGHT_ANSWER)      # fine-tunes the saved model in place, verified
    wrong_probes("/tmp/tiny/reasoner", TAUGHT_ANSWER)      # 0: every probe answered exactly

``teach_answer`` fine-tunes a model saved by ``segzero.models.tiny.reasoner.build_tiny_reasoner`` (teacher-forced,
the completion tokens only, random-noise images and random queries at frames of 28-112 px) until it answers
``answer`` to every probe of ``wrong_probes``; ``build_tiny_reasoner(path, answer=...)`` and
``build_answering_reasoner`` call it. It loads and saves through the real ``Reasoner`` / ``save_pretrained`` code.
"""

from __future__ import annotations

import re
from pathlib import Path

# What a taught tiny reasoner answers (Seg-Zero's single-object format, coordinates for a 56 x 56 frame).
# No repeated number pairs in the taught answer: a 2-layer model copying "[20,20], ... [20," confuses where it is.
TAUGHT_ANSWER = (
    '<think>The object is in the middle.</think><answer>{"bbox": [8,12,40,45], "points_1": [19,26], '
    '"points_2": [31,37]}</answer>'
)
# Everyday query words mixed into the taught model's training queries (with the answer's own words).
QUERY_WORDS = tuple(
    [
        "the",
        "a",
        "an",
        "what",
        "where",
        "which",
        "could",
        "i",
        "sit",
        "down",
        "drink",
        "thirsty",
        "cat",
        "dog",
        "person",
        "thing",
        "object",
        "shape",
        "left",
        "right",
        "top",
        "bottom",
        "middle",
        "centre",
        "largest",
        "smallest",
        "red",
        "green",
        "blue",
        "yellow",
        "circle",
        "square",
        "triangle",
        "star",
        "something",
        "roll",
    ]
)


def wrong_probes(path: str | Path, answer: str, *, frames: tuple[int, ...] = (28, 56, 112)) -> int:
    """How many of a fixed set of probes the model at ``path`` does not answer with exactly ``answer`` (greedy):
    noise images of several shapes (tall, wide, square) and queries like the tests' at each model frame in
    ``frames``, in a batch of 4 (left padding) and one at a time."""
    import numpy as np
    from PIL import Image

    from segzero.models.reasoner import Reasoner

    rng = np.random.default_rng(12345)
    sizes = [(64, 48), (90, 40), (33, 70), (28, 28), (112, 56), (20, 30)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    queries = [f"object number {i}" for i in range(len(images) - 2)] + ["the object in the middle", "a"]
    n_tokens = len(answer) + 8  # enough to see a wrong or unfinished answer
    wrong = 0
    for frame in frames:
        reasoner = Reasoner.from_pretrained(path, device="cpu", dtype="float32", frame=frame, max_new_tokens=n_tokens)
        for batch_size in (4, 1):
            got = reasoner.generate(images, queries, batch_size=batch_size)
            wrong += sum(g.strip() != answer for g in got)
    return wrong


def teach_answer(
    path: str | Path,
    answer: str,
    *,
    steps: int = 200,
    lr: float = 5e-3,
    seed: int = 0,
    progress: bool = False,
    max_rounds: int = 4,
    verify: bool = True,
) -> Path:
    """Fine-tune the saved model at ``path`` in place to answer ``answer`` to every (image, query).

    Teacher-forced cross-entropy on the completion tokens only, AdamW, batches of 4 random-noise images with
    random frame sizes (28-112 px per side) and random queries with the Seg-Zero prompt. After ``steps`` the
    model must answer every ``wrong_probes`` probe exactly; where one is wrong (how many steps suffice depends on
    the transformers release), it is taught ``steps // 2`` more at half the learning rate, up to ``max_rounds``
    rounds, and ``RuntimeError`` names the count if probes are still wrong. Loads and saves through the real ``Reasoner`` /
    ``save_pretrained`` code. Deterministic for a given ``seed``. ``progress``: a tqdm bar over the steps (stderr).
    ``verify=False``: ``steps`` steps and no probes (e.g. to look at the progress bar).
    """
    if not verify:
        _teach(path, answer, steps=steps, lr=lr, seed=seed, progress=progress)
        return Path(path)
    for round_ in range(max_rounds + 1):
        _teach(path, answer, steps=steps if round_ == 0 else steps // 2, lr=lr / 2**round_, seed=seed + round_,
               progress=progress)  # fmt: skip
        wrong = wrong_probes(path, answer)
        if wrong == 0:
            return Path(path)
    raise RuntimeError(f"the tiny reasoner still answers {wrong} probe(s) wrongly after {max_rounds} more rounds")


def _teach(path: str | Path, answer: str, *, steps: int, lr: float, seed: int, progress: bool) -> None:
    """``steps`` teacher-forced steps of ``teach_answer`` on the model saved at ``path`` (saved back in place)."""
    import numpy as np
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from segzero.models.reasoner import Reasoner

    reasoner = Reasoner.from_pretrained(path, device="cpu", dtype="float32")
    tok = reasoner.processor.tokenizer
    target = answer + "<|im_end|>"
    n_target = len(tok(target, add_special_tokens=False)["input_ids"])
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz   ")
    # queries are random letters or random words, the answer's own words included: a query that repeats the
    # answer's text ("the object in the middle") must not pull the copy off course
    words = sorted(set(re.findall(r"[a-z]+", answer.lower())) | set(QUERY_WORDS))
    model = reasoner.model.train()
    # The answer must not depend on the image: zero (and freeze) the vision merger's output layer, so every image
    # token embeds to 0 and only the text and positions reach the decoder (a tiny decoder memorising a string is
    # otherwise thrown off by some noise images). The vision tower still runs, so the full path is exercised.
    merger_out = model.model.visual.merger.mlp[-1]
    with torch.no_grad():
        merger_out.weight.zero_()
        merger_out.bias.zero_()
    merger_out.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
        # cosine decay to 0: the last steps settle the weights (robust greedy answers across torch builds)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        for _ in tqdm(range(steps), desc="teaching the tiny reasoner its answer", unit="step", disable=not progress):
            sizes = rng.choice([28, 56, 84, 112], size=(4, 2))
            images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
            queries = [  # stripped: user queries reach the prompt without surrounding whitespace (check_query)
                (
                    " ".join(rng.choice(words, size=int(rng.integers(1, 9))))
                    if rng.random() < 0.5
                    else "".join(rng.choice(letters, size=int(rng.integers(1, 50)))) + "a"
                ).strip()
                for _ in images
            ]
            texts = [reasoner.prompt_text(im, q) + target for im, q in zip(images, queries, strict=True)]
            inputs = reasoner.processor(text=texts, images=images, padding=True, return_tensors="pt")
            labels = inputs["input_ids"].clone()
            labels[:, : labels.shape[1] - n_target] = -100  # left padding: the completion is the last n_target
            loss = model(**inputs, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval().save_pretrained(path)
