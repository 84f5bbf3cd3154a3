"""Linear optics for heralding: photon modes, loss, a 50:50 beam splitter, threshold detectors.

The photonic part of one time bin is four modes: each node's photon is split into a part
common to both nodes' photons (modes ``A_COMMON``, ``B_COMMON``) and, for node B, a part
orthogonal to node A's photon (``B_DISTINCT``; ``A_DISTINCT`` stays empty). With a mode
overlap mu = |<m_A|m_B>| the two-photon interference visibility is V = mu^2 (Hong, Ou &
Mandel, PRL 59, 2044 (1987)); a beam splitter mixes the common modes with each other and the
distinct modes with each other. Each output port has one threshold detector that sees both of
its modes.

Heralding works in the Heisenberg picture: a detection pattern's POVM element is pulled back
through the beam splitter and the loss channels once, after which the heralded spin state is
a Schur product with the overlaps of the spin-conditioned photon states (see ``heralding``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

A_COMMON, B_COMMON, A_DISTINCT, B_DISTINCT = 0, 1, 2, 3
#: Output port of each mode after the beam splitter: port 0 ('+') or port 1 ('-').
PLUS_PORT_MODES = (A_COMMON, A_DISTINCT)
MINUS_PORT_MODES = (B_COMMON, B_DISTINCT)


def _exp_antihermitian(generator: np.ndarray) -> np.ndarray:
    """exp(G) of an anti-Hermitian G from the eigenbasis of the Hermitian iG = V diag(l) V^+:
    exp(G) = V diag(exp(-i l)) V^+, unitary to machine precision. (numpy alone: scipy's
    ``expm`` gave the same to 1e-15 but its import cost every run a third of a second.)

    Rounding is cleaned where the exact exponential has none, as scipy's ``expm`` left it: a
    real G (a beam splitter's) has a real exp(G), and entries at rounding level are
    amplitudes that interfere away exactly (Hong-Ou-Mandel's |1,1> -> |1,1>), so the click
    operators built from this matrix keep their exact zeros."""
    values, vectors = np.linalg.eigh(1j * generator)
    out = (vectors * np.exp(-1j * values)) @ vectors.conj().T
    if not generator.imag.any():
        out = out.real.astype(complex)
    out[np.abs(out) < _ROUNDING] = 0.0
    return out


#: Below this, a unitary's entry is rounding error (64 ulps of 1)
_ROUNDING = 64 * np.finfo(float).eps


@dataclass(frozen=True)
class FockSpace:
    """``n_modes`` bosonic modes holding at most ``max_photons`` photons in total.

    Emission, loss, the beam splitter and detection never raise the total photon number, so
    this space is exact for at most ``max_photons`` emitted photons per time bin (two here:
    one per node), and much smaller than a per-mode truncation (15 states, not 81).
    """

    n_modes: int = 4
    max_photons: int = 2

    @cached_property
    def occupations(self) -> list[tuple[int, ...]]:
        return [
            occ
            for occ in itertools.product(range(self.max_photons + 1), repeat=self.n_modes)
            if sum(occ) <= self.max_photons
        ]

    @cached_property
    def _index(self) -> dict[tuple[int, ...], int]:
        return {occ: i for i, occ in enumerate(self.occupations)}

    @cached_property
    def dim(self) -> int:
        return len(self.occupations)

    @cached_property
    def photon_numbers(self) -> np.ndarray:
        """Array (dim, n_modes): photon number of each mode in each basis state."""
        return np.array(self.occupations)

    def annihilation(self, mode: int) -> np.ndarray:
        op = np.zeros((self.dim, self.dim), dtype=complex)
        for occ, col in self._index.items():
            if occ[mode]:
                lower = occ[:mode] + (occ[mode] - 1,) + occ[mode + 1 :]
                op[self._index[lower], col] = math.sqrt(occ[mode])
        return op

    def hopping(self, to_mode: int, from_mode: int) -> np.ndarray:
        """a_to^dagger a_from, built directly (it conserves the photon number, so unlike a
        product of truncated ladder operators it is exact in this space)."""
        op = np.zeros((self.dim, self.dim), dtype=complex)
        for occ, col in self._index.items():
            if occ[from_mode] == 0:
                continue
            new = list(occ)
            new[from_mode] -= 1
            new[to_mode] += 1
            op[self._index[tuple(new)], col] = math.sqrt(occ[from_mode] * new[to_mode])
        return op

    def vacuum(self) -> np.ndarray:
        ket = np.zeros(self.dim, dtype=complex)
        ket[self._index[(0,) * self.n_modes]] = 1.0
        return ket

    def beam_splitter(self, mode_a: int, mode_b: int) -> np.ndarray:
        """50:50 beam splitter exp(pi/4 (a^dag b - a b^dag)); its generator conserves the
        photon number, so the exponential is exact in this space."""
        generator = self.hopping(mode_a, mode_b) - self.hopping(mode_b, mode_a)
        return _exp_antihermitian(math.pi / 4 * generator)

    def loss_kraus(self, mode: int, transmission: float) -> list[np.ndarray]:
        """Kraus operators of a pure-loss channel (beam splitter to the environment) on a mode:
        K_k|n> = sqrt(C(n,k) t^(n-k) (1-t)^k) |n-k> (Nielsen & Chuang ex. 8.22)."""
        if not 0.0 <= transmission <= 1.0:
            raise ValueError(f"transmission={transmission!r}: expected a value in [0, 1]")
        ops = []
        for k in range(self.max_photons + 1):
            op = np.zeros((self.dim, self.dim), dtype=complex)
            for occ, col in self._index.items():
                n = occ[mode]
                if n >= k:
                    lower = occ[:mode] + (n - k,) + occ[mode + 1 :]
                    op[self._index[lower], col] = math.sqrt(
                        math.comb(n, k) * transmission ** (n - k) * (1 - transmission) ** k
                    )
            ops.append(op)
        return ops

    def no_click_probability(
        self, modes: tuple[int, ...], efficiency: float, dark_probability: float
    ) -> np.ndarray:
        """Diagonal of the no-click POVM of a threshold detector watching ``modes``:
        P(no click | n) = (1 - p_dark) (1 - eta)^n."""
        n = self.photon_numbers[:, list(modes)].sum(axis=1)
        return (1.0 - dark_probability) * (1.0 - efficiency) ** n


@dataclass(frozen=True)
class DetectorPair:
    """The two threshold detectors behind the heralding beam splitter ('+' and '-' port).

    ``efficiency`` and ``dark_probability`` (a dark count within one detection window) are
    either one value for both detectors or a pair (plus, minus).
    """

    efficiency: float | tuple[float, float]
    dark_probability: float | tuple[float, float]

    def port(self, index: int) -> tuple[float, float]:
        """(efficiency, dark probability) of port 0 ('+') or 1 ('-')."""
        eff = (
            self.efficiency if isinstance(self.efficiency, float | int) else self.efficiency[index]
        )
        dark = (
            self.dark_probability
            if isinstance(self.dark_probability, float | int)
            else self.dark_probability[index]
        )
        return float(eff), float(dark)


def click_pattern_operators(
    space: FockSpace,
    detectors: DetectorPair,
    transmission_a: float,
    transmission_b: float,
    dead: tuple[bool, bool] = (False, False),
) -> dict[str, np.ndarray]:
    """Heisenberg-picture POVM elements, on the modes *as emitted*, for one time bin.

    Keys: '+' (only the plus detector clicked), '-' (only minus), 'none', 'both'. A detector
    marked dead cannot click (dead time after a click in an earlier round).
    """
    no_click = []
    for port, modes in enumerate((PLUS_PORT_MODES, MINUS_PORT_MODES)):
        if dead[port]:
            no_click.append(np.ones(space.dim))
        else:
            no_click.append(space.no_click_probability(modes, *detectors.port(port)))
    n_plus, n_minus = no_click
    diagonals = {
        "+": (1 - n_plus) * n_minus,
        "-": n_plus * (1 - n_minus),
        "none": n_plus * n_minus,
        "both": (1 - n_plus) * (1 - n_minus),
    }
    bs = space.beam_splitter(A_COMMON, B_COMMON) @ space.beam_splitter(A_DISTINCT, B_DISTINCT)
    loss = [
        space.loss_kraus(A_COMMON, transmission_a),
        space.loss_kraus(A_DISTINCT, transmission_a),
        space.loss_kraus(B_COMMON, transmission_b),
        space.loss_kraus(B_DISTINCT, transmission_b),
    ]
    out = {}
    for name, diag in diagonals.items():
        op = bs.conj().T @ (diag[:, None] * bs)
        for kraus in loss:
            op = sum(k.conj().T @ op @ k for k in kraus)
        out[name] = op
    return out


def emitted_photon_states(space: FockSpace, visibility: float) -> dict[tuple[int, int], np.ndarray]:
    """Photon state of one time bin given which nodes emit: key (emits_A, emits_B)."""
    mu = math.sqrt(visibility)
    nu = math.sqrt(max(0.0, 1.0 - visibility))
    create_a = space.annihilation(A_COMMON).conj().T
    create_b = (
        mu * space.annihilation(B_COMMON).conj().T + nu * space.annihilation(B_DISTINCT).conj().T
    )
    states = {}
    for emits_a in (0, 1):
        for emits_b in (0, 1):
            ket = space.vacuum()
            if emits_a:
                ket = create_a @ ket
            if emits_b:
                ket = create_b @ ket
            states[(emits_a, emits_b)] = ket
    return states
