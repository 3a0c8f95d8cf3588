"""The built-in providers, and how `addons:create` names them (`heroku-postgresql:PLAN`)."""

from __future__ import annotations

from dataclasses import dataclass

from addons.errors import UnknownAddon
from addons.interface import Environment, Provider, ProviderFactory
from addons.postgres.provider import PostgresProvider

PROVIDERS: dict[str, ProviderFactory] = {"postgres": PostgresProvider}
ALIASES = {"postgresql": "postgres", "heroku-postgresql": "postgres"}


@dataclass(frozen=True)
class ServiceSpec:
    provider: str
    plan: str


def parse_spec(text: str, env: Environment) -> tuple[ServiceSpec, Provider]:
    """`postgres`, `heroku-postgresql:hobby-dev`... -> the provider and a plan it has."""
    name, _, plan = text.partition(":")
    canonical = ALIASES.get(name, name)
    factory = PROVIDERS.get(canonical)
    if factory is None:
        known = ", ".join(sorted([*PROVIDERS, *ALIASES]))
        raise UnknownAddon(
            f"Couldn't find either the add-on service or the plan {text!r}: add-ons are {known}"
        )
    provider = factory(env)
    if plan and plan not in provider.plans:
        raise UnknownAddon(
            f"{canonical} has no plan {plan!r}: plans are {', '.join(provider.plans)}"
        )
    return ServiceSpec(canonical, plan or provider.plans[0]), provider


def provider_for(name: str, env: Environment) -> Provider:
    factory = PROVIDERS.get(name)
    if factory is None:
        raise UnknownAddon(f"no provider {name!r}")
    return factory(env)
