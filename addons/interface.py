"""The add-on interface: a provider provisions, deprovisions and describes.

A provider is a small `Protocol`; the built-in ones are the explicit
`addons.providers.PROVIDERS` dict. Provisioning returns config vars named
relative to the attachment (`{"URL": ...}` becomes `DATABASE_URL`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from addons.settings import AddonSettings
from runtime.settings import Settings

#: progress lines for the user (streamed to the SSH client), never `print`
Log = Callable[[str], None]

STATE_PROVISIONING = "provisioning"
STATE_PROVISIONED = "provisioned"


@dataclass(frozen=True)
class Environment:
    """What providers and add-on operations need of the platform."""

    settings: Settings
    addons: AddonSettings

    @classmethod
    def read(cls, settings: Settings) -> Environment:
        return cls(settings, AddonSettings.of(settings))


@dataclass(frozen=True)
class Addon:
    """One provisioned resource, attached to one app."""

    name: str
    app: str
    provider: str
    plan: str
    #: the config var prefix: `DATABASE` sets `DATABASE_URL`
    attachment: str
    state: str
    #: what the provider needs to find the resource again (never a password)
    resource: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def config_var(self) -> str:
        return f"{self.attachment}_URL"


@dataclass(frozen=True)
class Provisioned:
    #: config vars relative to the attachment: `{"URL": ...}`
    config: Mapping[str, str]
    resource: Mapping[str, str]


class Provider(Protocol):
    """One kind of add-on (`postgres`)."""

    #: the plans it accepts; the first is the default
    plans: tuple[str, ...]
    #: the start of its add-ons' names (`postgresql`)
    service: str
    #: the attachment of a second add-on on one app (`OURO_POSTGRES` -> `OURO_POSTGRES_RED`)
    attachment_prefix: str

    def provision(self, app: str, addon_name: str, plan: str, log: Log) -> Provisioned:
        """Create the resource; raises AddonError (and leaves nothing behind)."""
        ...

    def deprovision(self, addon: Addon, log: Log) -> None:
        """Remove the resource; one already gone is not an error."""
        ...

    def describe(self, addon: Addon) -> Mapping[str, str]:
        """`Label: value` facts for `addons:info`."""
        ...


ProviderFactory = Callable[[Environment], Provider]
