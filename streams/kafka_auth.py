"""How every Kafka client of learnstream authenticates: Settings (or a kcat-style config file) ->
aiokafka keyword arguments and Faust's broker_credentials.

One place, so the worker, the CLI (publish, alerts, topics), alert delivery, the bench and the demo
all connect the same way. A kcat config file (``kcat -F FILE``: ``bootstrap.servers``,
``security.protocol``, ``sasl.mechanisms``, ``sasl.username``, ``sasl.password``, ``ssl.ca.location``,
``ssl.certificate.location``, ``ssl.key.location``) is read by :func:`from_kcat_config`;
`learnstream services up` writes one per principal.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.config import Settings

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaConfigError(ValueError):
    """A Kafka client configuration that cannot work (unknown protocol, missing password...)."""


@dataclass(frozen=True)
class KafkaAuth:
    """Credentials and transport security of one Kafka principal (no bootstrap address)."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = ""
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise KafkaConfigError(f"Kafka security protocol {self.security_protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise KafkaConfigError(f"SASL mechanism {self.sasl_mechanism!r} is not one of {', '.join(MECHANISMS)}")
            if not self.username or not self.password:
                raise KafkaConfigError(f"{self.security_protocol} needs a SASL user name and password")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def __repr__(self) -> str:  # never show the password
        return f"KafkaAuth({self.security_protocol}, user={self.username or '-'})"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password)
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def faust_credentials(self):
        """Faust's broker_credentials (None for PLAINTEXT)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.sasl_mechanism, ssl_context=self.ssl_context())
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None

    def kcat_config(self, bootstrap: str, mechanism: str | None = None) -> str:
        """This principal as a kcat/librdkafka config file (``kcat -F FILE``), optionally with
        another SASL mechanism (the local broker's kcat configs use PLAIN)."""
        lines = [f"bootstrap.servers={bootstrap}", f"security.protocol={self.security_protocol.lower()}"]
        if self.sasl:
            lines += [f"sasl.mechanisms={mechanism or self.sasl_mechanism}", f"sasl.username={self.username}",
                      f"sasl.password={self.password}"]
        for key, value in (("ssl.ca.location", self.ssl_cafile), ("ssl.certificate.location", self.ssl_certfile),
                           ("ssl.key.location", self.ssl_keyfile)):
            if value:
                lines.append(f"{key}={value}")
        return "\n".join(lines) + "\n"


def kafka_auth(settings: Settings) -> KafkaAuth:
    """The principal the settings name: LEARNSTREAM_KAFKA_CONFIG_FILE if set, else
    LEARNSTREAM_KAFKA_SECURITY_PROTOCOL, _SASL_*, _SSL_*."""
    if settings.kafka_config_file:
        return from_kcat_config(settings.kafka_config_file)[1]
    return KafkaAuth(
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        ssl_certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        ssl_keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )


def default_auth() -> KafkaAuth:
    """The principal of this process's settings (environment, then the services env file)."""
    from streams.config import load_settings

    return kafka_auth(load_settings())


def read_kcat_config(path: Path | str) -> dict[str, str]:
    """``key=value`` lines of a kcat/librdkafka config file (``#`` comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def from_kcat_config(path: Path | str) -> tuple[str | None, KafkaAuth]:
    """(bootstrap.servers or None, the principal) from a kcat config file."""
    values = read_kcat_config(path)
    try:
        return values.get("bootstrap.servers"), KafkaAuth(
            security_protocol=values.get("security.protocol", "plaintext").upper(),
            sasl_mechanism=values.get("sasl.mechanisms", values.get("sasl.mechanism", "SCRAM-SHA-512")).upper(),
            username=values.get("sasl.username", ""),
            password=values.get("sasl.password", ""),
            ssl_cafile=values.get("ssl.ca.location"),
            ssl_certfile=values.get("ssl.certificate.location"),
            ssl_keyfile=values.get("ssl.key.location"),
        )
    except KafkaConfigError as exc:
        raise KafkaConfigError(f"{path}: {exc}") from exc
