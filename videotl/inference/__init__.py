"""Using a trained model: ``Predictor(cfg, checkpoint).predict(path)`` scores any video
(``tools/predict.py``)."""

from videotl.inference.predictor import Prediction, Predictor, Segment

__all__ = ["Prediction", "Predictor", "Segment"]
