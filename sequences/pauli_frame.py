"""Pauli-frame bookkeeping for Bell pairs.

A pair in Bell state B is Phi+ with a Pauli X^x Z^z applied to one of its qubits; (x, z) is
its *frame*: Phi+ (0, 0), Psi+ (1, 0), Phi- (0, 1), Psi- (1, 1). A Pauli on either qubit of
a Bell pair has the same effect up to a global phase, so frames simply add (XOR) when pairs
are joined by a Bell-state measurement, and a correction X^x Z^z on one qubit returns the
pair to Phi+ (Bennett et al., PRL 70, 1895 (1993); Zukowski et al., PRL 71, 4287 (1993)).
"""

from __future__ import annotations

from dataclasses import dataclass

_FRAMES = {"PHI+": (0, 0), "PSI+": (1, 0), "PHI-": (0, 1), "PSI-": (1, 1)}
_NAMES = {v: k for k, v in _FRAMES.items()}


@dataclass(frozen=True)
class PauliFrame:
    """X^x Z^z relative to Phi+."""

    x: int = 0
    z: int = 0

    @classmethod
    def of(cls, bell_state: str) -> PauliFrame:
        try:
            x, z = _FRAMES[bell_state]
        except KeyError:
            raise ValueError(
                f"bell_state={bell_state!r}: expected one of {sorted(_FRAMES)}"
            ) from None
        return cls(x, z)

    @property
    def bell_state(self) -> str:
        return _NAMES[(self.x, self.z)]

    def __add__(self, other: PauliFrame) -> PauliFrame:
        return PauliFrame(self.x ^ other.x, self.z ^ other.z)

    @classmethod
    def from_bell_measurement(cls, m_control: int, m_target: int) -> PauliFrame:
        """Frame produced by a BSM done as CNOT(control -> target), H(control), Z readout of
        both: the target's outcome flips X, the control's outcome flips Z."""
        return cls(m_target, m_control)

    def corrections(self) -> list[str]:
        """The Pauli gates (in order) that undo this frame on one qubit."""
        return (["X"] if self.x else []) + (["Z"] if self.z else [])
