"""Training, evaluation and cross-validation."""
