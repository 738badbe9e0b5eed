"""TF-IDF (optionally projected by SVD or PCA) and the TF-IDF MLP distilled from a teacher model."""
