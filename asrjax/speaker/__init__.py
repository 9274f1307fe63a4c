"""Speaker verification: embedding scoring and score normalisation (issue 19)."""
