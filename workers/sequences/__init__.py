"""Next-vector models over ordered rows (LSTM, GRU, Transformer), trained and served as jobs."""
