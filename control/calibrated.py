"""The calibrated operating point: what runs and calibrations take from the calibration store.

Every value is the store's latest *passed* record (``CalibrationStore.latest``); a value never
calibrated falls back to the nominal one given by the caller. Keys (see ``control.calibrate``):

* ``<node>.laser.resonance_wavelength_nm`` -> the node's excitation wavelength;
* ``<node>.frequency_converter.optimal_temperature_c`` -> its converter's crystal temperature;
* ``<node>.spin.resonance_frequency_hz`` -> its microwave carrier (with the pi-pulse
  amplitude, ``<node>.spin.pi_pulse_amplitude_v``, and each link's alpha: see
  ``CalibrationStore``);
* ``<station>.interferometer.aom_phase_deg`` -> the RF phase of the *phase actuator* node's
  excitation AOM (:func:`phase_actuator`); the other node of the link is held at 0 deg, the
  reference the calibration was made against;
* ``<station>.channel_delays.delay_ps_ch<n>`` -> the station's time-tagger input delays.
"""

from __future__ import annotations

from pathlib import Path

from sequences.attempt_loop import NodeOptics

from .calibration_store import CalibrationStore
from .network_config import NetworkConfig


def phase_actuator(config: NetworkConfig, station: str) -> str:
    """The node whose AOM phase compensates the interferometer phase of ``station``'s link:
    the one on fewer links (an end node, so a repeater's AOM, shared by two links, stays the
    fixed reference of both), the first of the link on a tie."""
    link = config.heralding_stations[station].link

    def links_of(node: str) -> int:
        return sum(node in hs.link for hs in config.heralding_stations.values())

    return min(link, key=links_of)


def store_beside(network_path: str | Path) -> CalibrationStore | None:
    """The calibration store beside a network file, or None if there is none yet."""
    store = CalibrationStore.beside(network_path)
    return store if store.path.exists() else None


def _latest(store: CalibrationStore | None, key: str) -> float | None:
    record = store.latest(key) if store is not None else None
    return record.value if record is not None else None


def calibrated_optics(
    store: CalibrationStore | None, config: NetworkConfig, node: str, nominal: NodeOptics
) -> NodeOptics:
    """``nominal`` with every value the store holds for ``node`` put in: laser wavelength,
    converter temperature and MW frequency (``CalibrationStore.node_optics``), and the AOM
    phase of each of its links."""
    if store is not None:
        nominal = store.node_optics(node, nominal)
    update: dict[str, float] = {}
    for station, hs in config.heralding_stations.items():
        if node not in hs.link:
            continue
        phase = _latest(store, f"{station}.interferometer.aom_phase_deg")
        if phase is None:
            continue
        if phase_actuator(config, station) == node:
            update["switch_phase_deg"] = phase % 360.0
        else:
            update.setdefault("switch_phase_deg", 0.0)  # the reference arm
    update["switch_channel"] = config.nodes[node].optical_switch_channel
    return nominal.model_copy(update=update)


def calibrated_tagger_delays(
    store: CalibrationStore | None, config: NetworkConfig, station: str
) -> tuple[int, int]:
    """The '+' and '-' time-tagger input delays of ``station`` (ps; 0 if not calibrated)."""
    tagger = config.heralding_stations[station].time_tagger
    delays = []
    for channel in (tagger.plus, tagger.minus):
        value = _latest(store, f"{station}.channel_delays.delay_ps_ch{channel}")
        delays.append(int(round(value)) if value is not None else 0)
    return delays[0], delays[1]
