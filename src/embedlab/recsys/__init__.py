"""Matrix-factorization recommenders: models, training, rating metrics, row graphs."""
