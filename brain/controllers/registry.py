"""The registry that names the controllers: ``register`` adds one, ``make`` builds one by name."""

from __future__ import annotations

from collections.abc import Callable

from brain.controllers.base import Controller

__all__ = ["register", "make", "names"]


_REGISTRY: dict[str, Callable[[], Controller]] = {}


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator adding a controller under ``cls.name``; a taken name raises."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY:
        raise ValueError(f"controller name {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def make(name: str, options: dict | None = None) -> Controller:
    """A new controller by registry name; an unknown name raises ``KeyError`` listing the known ones.

    ``NAME+priority`` wraps it in emergency-vehicle pre-emption (:mod:`brain.controllers.priority`).

    ``options`` configure a controller that has a ``Config`` class (built with its
    ``from_mapping``, so unknown keys raise ``ValueError``); others take none.
    """
    if name.endswith("+priority"):
        from brain.controllers.priority import Priority

        return Priority(make(name[: -len("+priority")], options))
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown controller {name!r} (known: {', '.join(names())})") from None
    if not options:
        return cls()
    config = getattr(cls, "Config", None)
    if config is None:
        raise ValueError(f"controller {name!r} takes no options (got {', '.join(sorted(options))})")
    return cls(config.from_mapping(options))


def names() -> list[str]:
    return sorted(_REGISTRY)
