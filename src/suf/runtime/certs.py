"""Certificates for trying the TLS channel out (`suf certs`, `suf run --tls`): a self-signed CA and
one certificate + private key per party, signed by it (ECDSA P-256, `cryptography`).

    DIR/ca.pem              the CA certificate: each party's --peer-ca
    DIR/p0.pem, p0.key      P0's --cert and --key
    DIR/p1.pem, p1.key      P1's --cert and --key

The CA's private key is not written: it signs these two certificates and is dropped, so no third
certificate the parties would trust can be made from this directory.  Private keys are written
with mode 0600.  For a deployment, each party should keep its key to itself (made on its own
machine, certificate signed by a CA both trust); this one-directory helper is for tests and demos.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from suf.core.errors import InputError
from suf.net.tls import TLSConfig

FILES = ("ca.pem", "p0.pem", "p0.key", "p1.pem", "p1.key")
VALID_DAYS = 365
ROLES = ("P0 (model owner)", "P1 (client)")


def party_tls(directory, party: int) -> TLSConfig:
    """The TLSConfig of `party` from a directory `make_certs` wrote."""
    d = Path(directory)
    return TLSConfig(d / f"p{party}.pem", d / f"p{party}.key", d / "ca.pem")


def make_certs(out, days: int = VALID_DAYS) -> dict[str, Path]:
    """Write a fresh CA certificate and both parties' certificates and keys into `out` (made if
    absent); refuses to overwrite any of them.  Returns {file name: path}."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: not a directory")
    taken = [f for f in FILES if (out / f).exists()]
    if taken:
        raise InputError(f"--out {out}: {', '.join(taken)} already there; choose another directory")
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    run_id = os.urandom(4).hex()

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "suf"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"suf test CA {run_id}")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    written = {"ca.pem": out / "ca.pem"}
    written["ca.pem"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for party in (0, 1):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(f"suf {ROLES[party]} {run_id}"))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"),
                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path = out / f"p{party}.pem", out / f"p{party}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        written[cert_path.name], written[key_path.name] = cert_path, key_path
    return written
