"""Next-vector models (LSTM, GRU, transformer) over ordered groups of a collection's vectors."""
