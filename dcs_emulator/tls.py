"""TLS for the emulator: a throwaway CA and a certificate for 127.0.0.1, so the SDK talks HTTPS as it does to
DCS. Only TLS can reproduce an SSL error raised while the client reads an answer (the SDK reports any SSL error
as `SslHandShakeException`, also after the request was sent). Needs `trustme` (a test dependency)."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile


class TlsFiles:
    """The server's SSL context and the CA file a client must trust (e.g. via REQUESTS_CA_BUNDLE)."""

    def __init__(self, host: str) -> None:
        import trustme

        ca = trustme.CA()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host).configure_cert(self.context)
        fd, self.ca_file = tempfile.mkstemp(prefix="dcs-emulator-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as out:
            out.write(ca.cert_pem.bytes())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.ca_file)
