"""TLS for every gRPC listener and client and for NATS, from file paths in settings.

One set of files per service: its certificate and key (what it presents, as server and as
client), and the CA bundle it checks others against. With `tls_client_certs=require` a server
also asks callers for a certificate signed by that CA (mutual TLS); the certificate's names can
then stand in for an API key (`TIERLIFT_TLS_IDENTITIES`, see core/identity.py). Files are read
at start: cert-manager rotates by replacing the Secret, and a rolling restart picks it up.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from tierlift.core.entry import StartupError


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path
    client_certs: str = "none"  # none | request | require (servers only)

    def _read(self, path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StartupError(f"TIERLIFT_TLS_{what}_FILE: cannot read {path}: {exc.strerror}") from None

    def server_credentials(self) -> grpc.ServerCredentials:
        pair = (self._read(self.key, "KEY"), self._read(self.cert, "CERT"))
        asks = self.client_certs != "none"
        return grpc.ssl_server_credentials(
            [pair],
            root_certificates=self._read(self.ca, "CA") if asks else None,
            require_client_auth=self.client_certs == "require",
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Check the server against our CA, and present our own certificate (for mTLS)."""
        return grpc.ssl_channel_credentials(
            root_certificates=self._read(self.ca, "CA"),
            private_key=self._read(self.key, "KEY"),
            certificate_chain=self._read(self.cert, "CERT"),
        )

    def https_context(self) -> ssl.SSLContext:
        """For the gateway's HTTP listener."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def ssl_context(self) -> ssl.SSLContext:
        """For the NATS client (`tls://`): verify the server, present our certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def tls_files(cert: str, key: str, ca: str, client_certs: str = "none") -> TlsFiles | None:
    """TLS settings as given: all three paths, or none (plain TCP, the embedded default)."""
    given = {"CERT": cert, "KEY": key, "CA": ca}
    if not any(given.values()):
        return None
    if missing := [name for name, value in given.items() if not value]:
        names = ", ".join(f"TIERLIFT_TLS_{m}_FILE" for m in missing)
        raise StartupError(f"TLS needs a certificate, its key and a CA bundle: {names} not set")
    return TlsFiles(Path(cert), Path(key), Path(ca), client_certs)
