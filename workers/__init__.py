"""The processes: the embedding worker, the encoders and the CLI."""
