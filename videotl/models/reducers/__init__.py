"""Token reducers for ViT/ViViT: the two base classes (``InputReducer``, ``QueryReducer``), ATS,
Token Pooling, the TokenLearner adapters, grid pooling, and their registry
(``TOKEN_REDUCERS``, ``build_token_reducer``)."""

from videotl.models.reducers.ats import AdaptiveTokenSampler, set_counted_tokens
from videotl.models.reducers.base import (
    InputReducer,
    QueryReducer,
    QuerySelection,
    TokenReducer,
    tokens_on_grid,
)
from videotl.models.reducers.block import BlockOutput, ReducingEncoderBlock
from videotl.models.reducers.pooling import GridPool
from videotl.models.reducers.registry import TOKEN_REDUCERS, ReducerSpec, build_token_reducer
from videotl.models.reducers.token_learner import GridTokenLearner, SequenceTokenLearnerV11
from videotl.models.reducers.token_pooling import TokenPooling

__all__ = [
    "TOKEN_REDUCERS",
    "AdaptiveTokenSampler",
    "BlockOutput",
    "GridPool",
    "GridTokenLearner",
    "InputReducer",
    "QueryReducer",
    "QuerySelection",
    "ReducerSpec",
    "ReducingEncoderBlock",
    "SequenceTokenLearnerV11",
    "TokenPooling",
    "TokenReducer",
    "build_token_reducer",
    "set_counted_tokens",
    "tokens_on_grid",
]
