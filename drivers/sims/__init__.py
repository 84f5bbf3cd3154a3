"""pyvisa-sim YAML files, one per driver, loadable the QCoDeS way.

``Driver("name", address="GPIB::1::INSTR", pyvisa_sim_file="drivers.sims:<model>.yaml")``.
Each file also has a device with a wrong identity at ``GPIB::9::INSTR`` (for tests of
the identity check).
"""
