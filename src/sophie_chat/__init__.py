"""Sophie: an AI chat assistant for Django sites."""

__version__ = "0.1.0"
