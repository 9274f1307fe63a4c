"""Training: device mesh and sharding, the train step, checkpoints, the loop."""
