"""Data pipelines built from the per-clip steps in `mater_tf` (tf.data run: `prepare`)."""
