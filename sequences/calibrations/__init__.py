"""Calibration routines: each measures through the HAL roles, fits (numpy/scipy) with
uncertainties, decides pass or fail against thresholds and returns a
:class:`CalibrationResult`, which ``control.calibration_store.CalibrationStore.record_result``
records.
"""

from ._common import CalibrationResult, LinkProbe, Measured
from .converter_phase_matching import converter_phase_matching_scan
from .detectors import calibrate_detectors
from .laser_resonance import laser_resonance_scan
from .readout import readout_fidelity

__all__ = [
    "CalibrationResult",
    "LinkProbe",
    "Measured",
    "calibrate_detectors",
    "converter_phase_matching_scan",
    "laser_resonance_scan",
    "readout_fidelity",
]
