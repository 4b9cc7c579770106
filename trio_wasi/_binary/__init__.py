"""Component binary decoding: bytes in, frozen data (``_model``) out."""

from trio_wasi._binary._decode import decode_component
from trio_wasi._errors import DecodeError

__all__ = ["DecodeError", "decode_component"]
