"""Model assemblies: encoders and the transducer around them."""
