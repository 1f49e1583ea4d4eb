"""C kernels built at first use with the machine's compiler (see ``videotl.kernels.build``)."""

from videotl.kernels.vector_attention import (
    native_vector_attention,
    native_vector_attention_available,
)

__all__ = ["native_vector_attention", "native_vector_attention_available"]
