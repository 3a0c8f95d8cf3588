"""The rules for names a user chooses: apps, config vars, keys."""

from __future__ import annotations

import re
import secrets

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{2,29}$")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

#: the platform's own app (DESIGN §2): only admins touch it
SYSTEM_APP = "ouro"


class InvalidName(ValueError):
    """A name does not follow its rule; the message says which rule."""


def check_app_name(name: str) -> str:
    if not APP_NAME.fullmatch(name):
        raise InvalidName(
            f"invalid app name {name!r}: use 3 to 30 lowercase letters, digits and dashes,"
            " starting with a letter"
        )
    return name


def check_config_key(key: str) -> str:
    if not CONFIG_KEY.fullmatch(key):
        raise InvalidName(
            f"invalid config var name {key!r}: use letters, digits and underscores,"
            " not starting with a digit"
        )
    return key


def check_key_name(name: str) -> str:
    if not KEY_NAME.fullmatch(name):
        raise InvalidName(f"invalid key name {name!r}: use up to 64 letters, digits and . _ @ -")
    return name


_ADJECTIVES = [
    "ancient",
    "autumn",
    "billowing",
    "bitter",
    "black",
    "blue",
    "bold",
    "broad",
    "calm",
    "cold",
    "cool",
    "crimson",
    "curly",
    "damp",
    "dark",
    "dawn",
    "delicate",
    "divine",
    "dry",
    "empty",
    "falling",
    "fancy",
    "floral",
    "fragrant",
    "frosty",
    "gentle",
    "green",
    "hidden",
    "holy",
    "icy",
    "jolly",
    "late",
    "lingering",
    "little",
    "lively",
    "long",
    "lucky",
    "misty",
    "morning",
    "muddy",
    "nameless",
    "noisy",
    "odd",
    "old",
    "orange",
    "patient",
    "plain",
    "polished",
    "proud",
    "purple",
    "quiet",
    "rapid",
    "red",
    "restless",
    "rough",
    "round",
    "royal",
    "salty",
    "shiny",
    "shrill",
    "shy",
    "silent",
    "small",
    "snowy",
    "soft",
    "solitary",
    "sparkling",
    "spring",
    "square",
    "steep",
    "still",
    "summer",
    "super",
    "sweet",
    "throbbing",
    "tight",
    "tiny",
    "twilight",
    "wandering",
    "weathered",
    "white",
    "wild",
    "winter",
    "wispy",
    "withered",
    "yellow",
    "young",
]
_NOUNS = [
    "art",
    "band",
    "bar",
    "base",
    "bird",
    "block",
    "boat",
    "bonus",
    "bread",
    "breeze",
    "brook",
    "bush",
    "butterfly",
    "cake",
    "cell",
    "cherry",
    "cloud",
    "credit",
    "darkness",
    "dawn",
    "dew",
    "disk",
    "dream",
    "dust",
    "feather",
    "field",
    "fire",
    "firefly",
    "flower",
    "fog",
    "forest",
    "frog",
    "frost",
    "glade",
    "glitter",
    "grass",
    "hall",
    "hat",
    "haze",
    "heart",
    "hill",
    "king",
    "lab",
    "lake",
    "leaf",
    "limit",
    "math",
    "meadow",
    "mode",
    "moon",
    "morning",
    "mountain",
    "mouse",
    "mud",
    "night",
    "paper",
    "pine",
    "poetry",
    "pond",
    "queen",
    "rain",
    "recipe",
    "resonance",
    "rice",
    "river",
    "salad",
    "scene",
    "sea",
    "shadow",
    "shape",
    "silence",
    "sky",
    "smoke",
    "snow",
    "snowflake",
    "sound",
    "star",
    "sun",
    "sun",
    "sunset",
    "surf",
    "term",
    "thunder",
    "tooth",
    "tree",
    "truth",
    "union",
    "unit",
    "violet",
    "voice",
    "water",
    "waterfall",
    "wave",
    "wildflower",
    "wind",
    "wood",
]


def random_app_name() -> str:
    """A Heroku-style name such as `sparkling-river-4821`."""
    return "-".join(
        (secrets.choice(_ADJECTIVES), secrets.choice(_NOUNS), f"{secrets.randbelow(10000):04d}")
    )
