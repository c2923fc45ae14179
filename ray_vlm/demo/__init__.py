"""The embedded default: synthetic data, tiny models, and the end-to-end demo."""
