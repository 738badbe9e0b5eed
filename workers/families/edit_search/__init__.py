"""Edit search: texts for a vector found by editing stored texts, guided by a trained word predictor."""
