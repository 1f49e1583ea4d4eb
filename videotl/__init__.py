"""videotl: video action recognition with TokenLearner, Vector Transformer and TokenFuser."""

__version__ = "0.1.0"
