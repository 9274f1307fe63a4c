"""Neural-network layers; every streaming layer maps ``(x, state) -> (y, state)``."""
