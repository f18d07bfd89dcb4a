"""The shapes world's model: what exists only to train and check segzero's tiny shapes-world reasoner.

``consistency``: the reasoning-answer consistency reward of the shapes reasoning format ("I see 1 red circle
[..] ...; The query means the red circle, 1."). Production code (``train``, ``eval``, ``pipeline``, ``models`` and
the core) imports nothing from here; a recipe names what it uses by its import path (e.g. ``reward_plugins:
["segzero.shapes.consistency:decision_consistency"]``).
"""
