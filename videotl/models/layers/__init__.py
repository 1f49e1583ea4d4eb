"""Standalone building blocks; each takes explicit arguments and documents its tensor shapes."""

from videotl.models.layers.attention import (
    AttentionContext,
    JointSpaceTimeAttention,
    MultiHeadSelfAttention,
)
from videotl.models.layers.factorised_attention import SpatialAttention, TemporalAttention
from videotl.models.layers.mlp import Mlp
from videotl.models.layers.mlp_mixer import TemporalMlpMixer
from videotl.models.layers.position import resize_grid_embedding
from videotl.models.layers.token_fuser import TokenBroadcast, TokenFuser, TokenFuserV11
from videotl.models.layers.token_learner import TokenLearner, TokenLearnerV11
from videotl.models.layers.token_learner_module import (
    TOKEN_FUSIONS,
    TOKEN_TRANSFORMERS,
    TOKENIZERS,
    TokenLearnerModule,
)
from videotl.models.layers.tokenizers import (
    DenseTokenizer,
    FixedGridTokenizer,
    PooledMlpTokenizer,
    PriorOnlyTokenizer,
)
from videotl.models.layers.transformer import DropPath, EncoderBlock
from videotl.models.layers.vector_transformer import (
    VectorTransformer,
    projected_vector_attention,
    vector_attention,
    vector_attention_reference,
)

__all__ = [
    "AttentionContext",
    "TOKENIZERS",
    "TOKEN_FUSIONS",
    "TOKEN_TRANSFORMERS",
    "DenseTokenizer",
    "DropPath",
    "EncoderBlock",
    "FixedGridTokenizer",
    "JointSpaceTimeAttention",
    "Mlp",
    "MultiHeadSelfAttention",
    "PooledMlpTokenizer",
    "PriorOnlyTokenizer",
    "SpatialAttention",
    "TemporalAttention",
    "TemporalMlpMixer",
    "TokenBroadcast",
    "TokenFuser",
    "TokenFuserV11",
    "TokenLearner",
    "TokenLearnerModule",
    "TokenLearnerV11",
    "VectorTransformer",
    "projected_vector_attention",
    "vector_attention",
    "resize_grid_embedding",
    "vector_attention_reference",
]
