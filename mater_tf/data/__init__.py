"""Records of windowed embeddings: schema, reader/writer, folds, synthetic corpus."""
