"""The two-party transport and its measured counters."""
from suf.net.stats import Counters, Stats
from suf.net.transport import HandshakeError, PeerError, Transport, local_pair

__all__ = ["Counters", "HandshakeError", "PeerError", "Stats", "Transport", "local_pair"]
