"""GRPO training of the reasoning model on TRL's ``GRPOTrainer`` (Seg-Zero / VisionReasoner recipes).

Modules (import them directly; this package imports nothing heavy so ``segzero --help`` stays fast):

- ``config``: ``TrainConfig`` (every knob, YAML recipes + ``key=value`` overrides);
- ``data``: released training sets (hub / disk) or the synthetic shapes world -> conversational GRPO prompts;
- ``rewards``: one TRL reward function per reward term, weights, ``samples.jsonl`` of completions;
- ``processing``: segzero's image processor in the form ``GRPOTrainer`` accepts;
- ``trainer``: ``train(cfg, output_dir, resume=False)`` -> checkpoints and ``OUTPUT_DIR/final``;
- ``verl``: ``compute_score`` and ``export_verl`` for users who train with verl instead.

Command line: ``segzero train --config recipes/tiny_cpu.yaml --output-dir runs/tiny``.
"""
