"""Every error the SDK raises, in one tree.

Callers catch by meaning, never by message text::

    SluiceError
    ├── TransformError              the event could not be turned into vendor requests
    │   ├── InstrumentationError    400  the event itself is wrong (missing userId, bad type)
    │   ├── ConfigurationError      400  the destination settings are wrong or incomplete
    │   └── UnsupportedEventError   400  the destination does not take this event type
    ├── DeliveryError               the vendor answered something other than success
    │   ├── RetryableError          500  try again later (5xx, timeouts, resets)
    │   ├── ThrottledError          429  try again after the vendor's back-off
    │   └── AbortedError            400  retrying cannot help (4xx, rejected payload)
    ├── EventDropped                298  deliberately not sent (filtered, unmapped, no consent); not an error
    ├── UnknownDestinationError     404  no integration by that name or alias
    ├── SpecError                   400  an integration's spec.yaml is invalid
    └── CertificationError          403  the connector is not certified for production use

Each error carries an HTTP-like ``status`` and a message that says what to fix,
and ``type`` is the stable machine name used in ``sluice transform`` output.
"""

from __future__ import annotations


class SluiceError(Exception):
    """Base of all Sluice errors."""

    type = "error"
    status = 500

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        return {"type": self.type, "status": self.status, "message": self.message}


class TransformError(SluiceError):
    type = "transform_error"
    status = 400


class InstrumentationError(TransformError):
    """The event lacks something the destination needs; fix the tracking call."""

    type = "instrumentation_error"


class ConfigurationError(TransformError):
    """The destination settings are wrong; fix the destination config."""

    type = "configuration_error"


class UnsupportedEventError(TransformError):
    """This destination does not accept the event type; filter it out upstream."""

    type = "unsupported_event_type"


class DeliveryError(SluiceError):
    type = "delivery_error"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RetryableError(DeliveryError):
    type = "retryable"
    status = 500


class ThrottledError(DeliveryError):
    type = "throttled"
    status = 429


class AbortedError(DeliveryError):
    type = "aborted"
    status = 400


class EventDropped(SluiceError):
    """The connector deliberately sends nothing for this event, for the reason given.

    Event filtering, missing consent, an event name the destination is configured not to map: the
    event is fine, the destination just does not want it. ``sluice transform`` answers no requests; the
    pipeline counts it as filtered, never as a dead letter.
    """

    type = "event_dropped"
    status = 298


class UnknownDestinationError(SluiceError):
    type = "unknown_destination"
    status = 404


class SpecError(SluiceError):
    """An integration's spec.yaml (or mapper) is invalid; the message names the file and key."""

    type = "spec_error"
    status = 400


class CertificationError(SluiceError):
    """A connector was loaded for production without a valid certification."""

    type = "certification_error"
    status = 403
