"""gensim Doc2Vec, trained on a collection's text."""
