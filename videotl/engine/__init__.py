"""Training engine: a small loop with hooks, checkpoints, schedule, precision, distribution.

``videotl.engine.run`` holds ``train(cfg)`` and ``evaluate_checkpoint(cfg, checkpoint)``.
"""
