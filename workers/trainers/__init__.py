"""Trainers of the model kinds trained here (doc2vec, tfidf, tfidf-mlp), streaming from the database."""
