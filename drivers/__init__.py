"""Instrument drivers (QCoDeS, one module per model) and the hardware abstraction layer.

* :mod:`drivers.hal` -- role contracts (Laser, OpticalSwitch, PhotonDetector, ...);
* :mod:`drivers.registry` -- driver names used in station configs -> class and role;
* :mod:`drivers.base` / :mod:`drivers.errors` -- the common base class and error family;
* :mod:`drivers.sims` -- one pyvisa-sim YAML per driver.
"""
