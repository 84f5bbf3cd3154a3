"""A count of edits to the simulated instruments' settings, so the lab can keep what it
derived from them (the link's operating point, an AWG's decoded program) until one changes.

An instrument class that mixes in :class:`Watched` counts every attribute assignment,
whether a SCPI command or Python code makes it, as an edit (but those it lists in
``_UNWATCHED``, e.g. an AWG's run state); the plain dicts and lists it stores become
:class:`WatchedDict` / :class:`WatchedList`, which count their in-place changes too. So
``edits()`` moves whenever anything a watched instrument's readings depend on changed; a
cache that saw the same count may skip reading the instruments again. A watched class's
readings (properties included) must depend on its attributes only, never on the time.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: the edit count, in a list so the containers and the mixin bump one shared cell
_COUNT = [0]


def edits() -> int:
    """How many edits the watched instruments have seen (only its changes matter)."""
    return _COUNT[0]


def note_edit() -> None:
    """Count one edit (for a change that is no attribute assignment)."""
    _COUNT[0] += 1


def _watched(value: Any) -> Any:
    """A plain dict or list as its watched counterpart (so are the plain dicts and lists
    in it); anything else as it is."""
    kind = type(value)
    if kind is dict:
        return WatchedDict({key: _watched(item) for key, item in value.items()})
    if kind is list:
        return WatchedList([_watched(item) for item in value])
    return value


class Watched:
    """Mixin: every attribute assignment counts as an edit (``_UNWATCHED`` names excepted),
    and plain dict and list values are stored watched (see the module docstring)."""

    _UNWATCHED: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._UNWATCHED:
            _COUNT[0] += 1
            value = _watched(value)
        # the generic assignment (data descriptors such as SCPI settings included); the
        # watched classes define no other __setattr__
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        _COUNT[0] += 1
        super().__delattr__(name)


class WatchedDict(dict):  # type: ignore[type-arg]
    """A dict whose every change counts as an edit (its values stored watched)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        _COUNT[0] += 1
        super().__setitem__(key, _watched(value))

    def __delitem__(self, key: Any) -> None:
        _COUNT[0] += 1
        super().__delitem__(key)

    def __ior__(self, other: Any) -> WatchedDict:
        self.update(other)
        return self

    def clear(self) -> None:
        _COUNT[0] += 1
        super().clear()

    def pop(self, *args: Any) -> Any:
        _COUNT[0] += 1
        return super().pop(*args)

    def popitem(self) -> Any:
        _COUNT[0] += 1
        return super().popitem()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        _COUNT[0] += 1
        return super().setdefault(key, _watched(default))

    def update(self, *args: Any, **kwargs: Any) -> None:
        _COUNT[0] += 1
        for key, value in dict(*args, **kwargs).items():
            super().__setitem__(key, _watched(value))


class WatchedList(list):  # type: ignore[type-arg]
    """A list whose every change counts as an edit."""

    def _edited(self) -> None:
        _COUNT[0] += 1

    def __setitem__(self, index: Any, value: Any) -> None:
        self._edited()
        if isinstance(index, slice):
            super().__setitem__(index, [_watched(item) for item in value])
        else:
            super().__setitem__(index, _watched(value))

    def __delitem__(self, index: Any) -> None:
        self._edited()
        super().__delitem__(index)

    def __iadd__(self, other: Any) -> WatchedList:  # type: ignore[override]
        self._edited()
        return super().__iadd__([_watched(item) for item in other])  # type: ignore[return-value]

    def __imul__(self, n: Any) -> WatchedList:  # type: ignore[override]
        self._edited()
        return super().__imul__(n)  # type: ignore[return-value]

    def append(self, value: Any) -> None:
        self._edited()
        super().append(_watched(value))

    def extend(self, values: Any) -> None:
        self._edited()
        super().extend([_watched(item) for item in values])

    def insert(self, index: Any, value: Any) -> None:
        self._edited()
        super().insert(index, _watched(value))

    def pop(self, *args: Any) -> Any:
        self._edited()
        return super().pop(*args)

    def remove(self, value: Any) -> None:
        self._edited()
        super().remove(value)

    def clear(self) -> None:
        self._edited()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._edited()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._edited()
        super().reverse()
