"""Parametric UMAP: a map of a collection's vectors to 2-D and back, and the geometry of its gaps."""
