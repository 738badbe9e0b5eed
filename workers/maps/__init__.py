"""Parametric UMAP maps of a collection's embeddings: 2D coordinates, gaps, filling them."""
