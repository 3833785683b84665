"""CA files for the vCenter ``ca_file`` checks: one PEM certificate that loads, and files that must be refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# kind of bad CA file -> what the refusal says about it
BAD_CA_FILES = {
    "missing": "does not exist",
    "not-pem": "is not a PEM certificate",
    "der": "is not a PEM certificate",
    "key-only": "is not a PEM certificate",
    "directory": "is a directory",
}


def write_ca_files(root: Path) -> dict[str, str]:
    """Paths by kind under ``root``: ``pem`` (a self-signed CA certificate) and every kind in BAD_CA_FILES."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test vCenter CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files = {
        "pem": cert.public_bytes(serialization.Encoding.PEM),
        "not-pem": b"this is not a certificate\n",
        "der": cert.public_bytes(serialization.Encoding.DER),
        "key-only": key_pem,
    }
    paths = {"missing": root / "missing.pem", "directory": root}
    for kind, content in files.items():
        paths[kind] = root / f"{kind}.pem"
        paths[kind].write_bytes(content)
    return {kind: str(path) for kind, path in paths.items()}
