"""Tests with no app: imaging, storage, configuration, the repository itself."""
