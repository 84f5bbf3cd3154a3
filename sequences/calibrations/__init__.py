"""Calibration routines: each measures through the HAL roles, fits (numpy/scipy) with
uncertainties, decides pass or fail against thresholds and returns a
:class:`CalibrationResult`, which ``control.calibration_store.CalibrationStore.record_result``
records.
"""

from ._common import CalibrationResult, LinkProbe, Measured
from ._two_photon import TwoNodeSource
from .channel_delays import calibrate_channel_delays
from .converter_phase_matching import converter_phase_matching_scan
from .detectors import calibrate_detectors
from .hom_visibility import measure_hom_visibility
from .interferometer_phase import HeraldedPairs, calibrate_interferometer_phase
from .laser_resonance import laser_resonance_scan
from .readout import readout_fidelity

__all__ = [
    "CalibrationResult",
    "HeraldedPairs",
    "LinkProbe",
    "Measured",
    "TwoNodeSource",
    "calibrate_channel_delays",
    "calibrate_detectors",
    "calibrate_interferometer_phase",
    "measure_hom_visibility",
    "converter_phase_matching_scan",
    "laser_resonance_scan",
    "readout_fidelity",
]
