"""Simulated instruments: the far side of the VISA wire in a dry run.

Each simulated instrument speaks the command set of one real model (the same one its driver in
``drivers/`` speaks), keeps the settings a real unit would keep, and asks the simulated lab's
physics (through :class:`LabHooks`) for everything it measures. The driver cannot tell it
from the real instrument: it is reached through a pyvisa resource (see ``visa_library``).
"""

from .protocols import LabHooks, MessageHandler, NullLabHooks

__all__ = ["LabHooks", "MessageHandler", "NullLabHooks"]
