"""TLS 1.3 with mutual authentication for the party-to-party connection (stdlib `ssl`).

Each party gives its own certificate and private key and the CA certificate that signed the
peer's certificate (`TLSConfig`).  Both sides require and verify the peer's certificate against
that CA alone (not the system's trust store).  Host names are not checked (`check_hostname` off):
parties are often named by IP address and the `--peer` of a listening P0 is its own address, so
the peer is authenticated by its key pair, i.e. by holding the private key of a certificate the
trusted CA signed.  The CA should therefore sign only the two parties' certificates (what
`suf certs` makes).  P0 (which listens) is the TLS server, P1 the client.

`tls_reason(e)` turns an `ssl.SSLError` into one line that says what went wrong.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from suf.core.errors import InputError

PLAINTEXT_HINT = "give both parties certificates (--cert, --key, --peer-ca), or neither"


@dataclass(frozen=True)
class TLSConfig:
    """One party's TLS material: its certificate (PEM), its private key (PEM) and the CA
    certificate (PEM) that must have signed the peer's certificate."""

    cert: str | Path
    key: str | Path
    peer_ca: str | Path

    def context(self, party: int) -> ssl.SSLContext:
        """The SSLContext of `party` (P0: server side, P1: client side); InputError (one line)
        for a missing or unreadable file or a key that does not match its certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if party == 0 else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # the peer is pinned by the CA, not by a name (module doc)
        ctx.verify_mode = ssl.CERT_REQUIRED  # mutual: P0 requires P1's certificate too
        if party == 0:
            ctx.num_tickets = 0  # no session resumption: every connection authenticates anew
        for what, path in (("--cert", self.cert), ("--key", self.key), ("--peer-ca", self.peer_ca)):
            if not Path(path).is_file():
                raise InputError(f"{what} {path}: no such file")
        try:
            ctx.load_cert_chain(str(self.cert), str(self.key))
        except (ssl.SSLError, OSError, ValueError) as e:
            raise InputError(f"--cert {self.cert} / --key {self.key}: cannot load the certificate "
                             f"and its private key ({_short(e)})") from None
        try:
            ctx.load_verify_locations(cafile=str(self.peer_ca))
        except (ssl.SSLError, OSError, ValueError) as e:
            raise InputError(f"--peer-ca {self.peer_ca}: not a PEM certificate ({_short(e)})") \
                from None
        return ctx


def tls_reason(e: BaseException) -> str:
    """One line for a TLS failure, naming the likely cause."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return (f"peer certificate not trusted ({e.verify_message}): --peer-ca must be the CA "
                f"that signed the peer's certificate")
    reason = (getattr(e, "reason", None) or "").upper()
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason or "CERTIFICATE_REQUIRED" in reason \
            or "DECRYPT_ERROR" in reason or "ACCESS_DENIED" in reason:
        return (f"the peer did not trust this party's certificate (TLS alert: "
                f"{reason.lower()}): the peer's --peer-ca must be the CA that signed --cert")
    if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                  "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD", "UNKNOWN_PROTOCOL",
                  "WRONG_SSL_VERSION", "RECORD_TOO_LARGE"):
        return f"the peer does not speak TLS (a plaintext peer?): {PLAINTEXT_HINT}"
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        return "the peer does not speak TLS 1.3"
    return f"TLS failed: {_short(e)}"


def _short(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
