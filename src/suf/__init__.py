"""suf: two-party secure inference of transformers with function secret sharing."""
from suf.core.ring import Ring

__all__ = ["Ring"]
__version__ = "0.1.0"
