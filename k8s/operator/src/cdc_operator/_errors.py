"""The operator's exception root. Handlers catch these, never a client library's errors."""

from __future__ import annotations


class OperatorError(Exception):
    """Root of every error raised by cdc_operator."""


class LagReadError(OperatorError):
    """Consumer-group lag could not be read from Kafka (broker down, unknown topic, timeout)."""


class SpecError(OperatorError):
    """A CdcConsumer's spec is invalid; the message says which field to fix."""


class OwnershipError(OperatorError):
    """A Deployment with the consumer's name exists and is not owned by the CdcConsumer."""


class AdmissionError(SpecError):
    """A valid spec the operator refuses to run: an image outside the platform's allowlist, or
    another workload's ServiceAccount. ``reason`` is the status condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
