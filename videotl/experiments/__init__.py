"""Experiments built on the engine: the paper's ablation variants and their runner
(``ablation_variants``, ``ablation``), and the token-reducer comparison at matched GFLOPs with its
FLOPs-against-tokens sweep (``reducer_comparison``, ``reducer_sweep``)."""
