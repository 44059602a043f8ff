"""practice-bot: the platform-neutral core of the auto-responder."""

__all__ = ["__version__"]

__version__ = "0.1.0"
