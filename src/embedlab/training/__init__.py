"""Training: one loop (batches, optimizer, scheduler, early stopping, checkpoints, trace)."""
