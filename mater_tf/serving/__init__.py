"""Serving: SavedModel export (and, later, the predictor on raw clips)."""
