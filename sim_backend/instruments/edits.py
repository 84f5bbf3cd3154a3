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


#: the generic attribute assignment (``Watched.__setattr__`` after its count)
_set_attribute = object.__setattr__


def _watched(value: Any) -> Any:
    """A plain dict or list as its watched counterpart (so are the plain dicts and lists
    in it); anything else as it is."""
    kind = type(value)
    if kind is dict:
        return WatchedDict({key: _watched(item) for key, item in value.items()})
    if kind is list:
        return WatchedList([_watched(item) for item in value])
    return value


def _counted(method: Any) -> Any:
    """``method`` of a container, counting one edit after it ran (or failed part-way)."""

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            _COUNT[0] += 1

    return counting


class Watched:
    """Mixin: every attribute assignment counts as an edit (``_UNWATCHED`` names excepted),
    and plain dict and list values are stored watched (see the module docstring). An edit
    is counted after the change is made, so a cache never records the new count with the
    old value."""

    _UNWATCHED: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._UNWATCHED:
            _set_attribute(self, name, value)
            return
        # the generic assignment (data descriptors such as SCPI settings included); the
        # watched classes define no other __setattr__. ``_watched`` changes only plain
        # dicts and lists: other values skip the call (an AWG starts per attempt loop)
        kind = type(value)
        _set_attribute(self, name, _watched(value) if kind is dict or kind is list else value)
        _COUNT[0] += 1

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        _COUNT[0] += 1


class WatchedDict(dict):  # type: ignore[type-arg]
    """A dict whose every change counts as an edit (its values stored watched)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _watched(value))
        _COUNT[0] += 1

    __delitem__ = _counted(dict.__delitem__)

    def __ior__(self, other: Any) -> WatchedDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    clear = _counted(dict.clear)
    pop = _counted(dict.pop)
    popitem = _counted(dict.popitem)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        try:
            return super().setdefault(key, _watched(default))
        finally:
            _COUNT[0] += 1

    def update(self, *args: Any, **kwargs: Any) -> None:
        try:
            for key, value in dict(*args, **kwargs).items():
                super().__setitem__(key, _watched(value))
        finally:
            _COUNT[0] += 1


class WatchedList(list):  # type: ignore[type-arg]
    """A list whose every change counts as an edit (its items stored watched)."""

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [_watched(item) for item in value])
        else:
            super().__setitem__(index, _watched(value))
        _COUNT[0] += 1

    __delitem__ = _counted(list.__delitem__)

    def __iadd__(self, other: Any) -> WatchedList:  # type: ignore[override,misc]
        self.extend(other)
        return self

    __imul__ = _counted(list.__imul__)

    def append(self, value: Any) -> None:
        super().append(_watched(value))
        _COUNT[0] += 1

    def extend(self, values: Any) -> None:
        super().extend([_watched(item) for item in values])
        _COUNT[0] += 1

    def insert(self, index: Any, value: Any) -> None:
        super().insert(index, _watched(value))
        _COUNT[0] += 1

    pop = _counted(list.pop)
    remove = _counted(list.remove)
    clear = _counted(list.clear)
    sort = _counted(list.sort)
    reverse = _counted(list.reverse)
