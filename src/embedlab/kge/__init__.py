"""Knowledge-graph embedding: interactions (scoring functions) and the model wrapper."""
