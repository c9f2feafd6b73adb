"""Image decoding, validation, metadata and renditions (framework-free)."""
