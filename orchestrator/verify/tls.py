"""What a load balancer's certificate says about TLS to it: the names it covers and who issued
it, read from the certificate Google returns (its PEM; `subjectAlternativeNames` where
Compute sets it).

Names match as in RFC 6125: exactly, case aside, or by a `*` standing for one whole leftmost
label.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtensionOID, NameOID


@dataclass(frozen=True)
class Certificate:
    """private: issued by a private CA (a CA Service pool through Certificate Manager), which
    no client trusts unless told to."""

    names: tuple[str, ...]
    subject: str
    issuer: str
    private: bool = False
    pem: str = ""

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def covers(self, host: str) -> bool:
        return any(name_matches(n, host) for n in self.names)


def parse(pem: str, names: list[str] | None = None, *, private: bool = False) -> Certificate:
    """The first certificate of `pem` (a chain's leaf)."""
    cert = x509.load_pem_x509_certificates(pem.encode())[0]
    found = list(names or [])
    if not found:
        try:
            ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            found = ext.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            found = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                     if isinstance(a.value, str)]
    return Certificate(tuple(found), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                       private, pem)


def anchored_by(served_pem: str, anchors: list[x509.Certificate]) -> x509.Certificate | None:
    """The anchor a served chain rests on: one that is a certificate of the chain, or that
    signed one (checked with its public key), as a client holding only those anchors checks
    it; None when none does."""
    chain = x509.load_pem_x509_certificates(served_pem.encode())
    for cert in chain:
        for anchor in anchors:
            if cert == anchor:
                return anchor
            if cert.issuer == anchor.subject:
                try:
                    cert.verify_directly_issued_by(anchor)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return anchor
    return None


def name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host
