"""Non-neural reference recognisers."""
