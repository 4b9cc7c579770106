"""Component binary decoding: bytes in, frozen data (``_model``) out."""
