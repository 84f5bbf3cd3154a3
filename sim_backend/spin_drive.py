"""Spin-control programs of the simulated lab: AWG waveforms played on a node's spin
through the MW source (the Rabi and Ramsey calibrations use them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .optics import drive_segments, driven_spin_unitary, rabi_frequency_rad_s

if TYPE_CHECKING:
    from .hardware import SimulatedHardware


def play_spin_program(hw: SimulatedHardware, awg_name: str) -> bool:
    """An AWG sequence without an optical pulse (no marker 1) is a spin-control program:
    its channel-1 waveform drives the node's communication spin through the MW source's
    IQ input, step by step, in simulated time; the sequence then ends. Returns False
    (nothing played) for attempt loops or when the node has no spin to drive.

    Each constant run of the waveform evolves the spin under the rotating-frame
    Hamiltonian (``optics.driven_spin_unitary``; Foot, Atomic Physics, sec. 7.3) with Omega
    from the level and Delta from the MW detuning plus a quasi-static offset drawn once per
    play (std sqrt(2)/T2*: a Gaussian free-induction decay exp(-(t/T2*)^2) over many plays,
    e.g. Childress et al., Science 314, 281 (2006)); free precession between pulses is
    folded into the next pulse (after the last one it is dropped: the controller's later
    gates are frame-free), and the qubit's idle T1/T2 act over the gaps.
    """
    wiring = next((w for w in hw.nodes.values() if w.awg == awg_name), None)
    if wiring is None or wiring.qubit_controller is None or wiring.microwave is None:
        return False
    if hw._program(wiring.node) is not None:
        return False
    awg = hw._instrument(awg_name)
    channel = awg.channels[1]
    waves = []
    for step in awg.sequence:
        wave = awg.waveforms.get(step.waveforms.get(1) or "")
        if wave is not None:
            waves.extend([wave] * max(step.repetitions, 1))
    if not waves:
        return False
    mw = hw._instrument(wiring.microwave)
    physics = hw._node_physics(wiring.node).spin_control
    drive_on = channel.output_on and mw.output_on and mw.iq_on
    detuning = 2 * np.pi * (mw.frequency_hz - physics.resonance_frequency_hz)
    if physics.t2_star_s is not None:
        detuning += hw._rng.normal(0.0, np.sqrt(2) / physics.t2_star_s)
    node = hw.lab.node(wiring.node)
    qubit = node.qubit(0)
    clock = hw.lab.clock
    free = np.eye(2, dtype=complex)
    for wave in waves:
        levels = np.asarray(wave.samples, dtype=float) * channel.amplitude_vpp / 2
        for level, duration in drive_segments(levels, awg.sample_rate_hz):
            if level == 0 or not drive_on:
                free = driven_spin_unitary(0.0, detuning, duration) @ free
                clock.advance(duration)
                continue
            omega = rabi_frequency_rad_s(level, mw.power_dbm, physics)
            node.apply_gate(driven_spin_unitary(omega, detuning, duration) @ free, qubit)
            free = np.eye(2, dtype=complex)
            clock.advance(duration)
    awg.running = False  # the sequence ran to its end
    return True
