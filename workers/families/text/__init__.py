"""Text encoders made elsewhere: sentence-transformers, Hugging Face mean pooling, and encoders behind an API."""
