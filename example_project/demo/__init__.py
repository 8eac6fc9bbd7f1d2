"""Casa Pronta: a small home-services site that shows sophie-chat at work."""
