"""segzero: reasoning segmentation (Seg-Zero / VisionReasoner) — inference, evaluation, GRPO training, serving.

Importing the package is cheap: it loads no torch. The light core (``segzero.answer``, ``segzero.parsing``,
``segzero.geometry``, ``segzero.rewards``, ``segzero.metrics``, ``segzero.prompts``, ``segzero.points``,
``segzero.images``) needs only the standard library, numpy, scipy and PIL. Model adapters, the pipeline,
evaluation, training and serving live in sub-packages that import torch on demand.
"""

__version__ = "0.1.0"
