"""The attribute values a freshly opened session of the simulated VISA library reports
(VISA defaults per interface type; ``visa_library``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pyvisa import constants, rname

RA = constants.ResourceAttribute


def default_attributes(name: str, parsed: rname.ResourceName) -> dict[int, Any]:
    """The attribute values a freshly opened session reports (VISA defaults)."""
    parts = {f.name: getattr(parsed, f.name) for f in fields(parsed)}
    board = parts.get("board", "0")
    attrs: dict[int, Any] = {
        RA.resource_name: name,
        RA.interface_type: int(parsed.interface_type_const),
        RA.interface_number: int(board) if str(board).isdigit() else 0,
        RA.resource_class: parsed.resource_class,
        RA.resource_manufacturer_name: "qnode simulated lab",
        RA.resource_manufacturer_id: 0x3FFF,
        RA.resource_impl_version: 0x0010_0000,
        RA.resource_spec_version: 0x0070_0000,
        RA.resource_lock_state: int(constants.AccessModes.no_lock),
        RA.timeout_value: 2000,
        RA.max_queue_length: 50,
        RA.user_data: 0,
        RA.send_end_enabled: constants.VI_TRUE,
        RA.suppress_end_enabled: constants.VI_FALSE,
        RA.termchar_enabled: constants.VI_FALSE,
        RA.termchar: 0x0A,
        RA.io_prot: int(constants.IOProtocol.normal),
        RA.file_append_enabled: constants.VI_FALSE,
        RA.read_buffer_size: 4096,
        RA.write_buffer_size: 4096,
        RA.dma_allow_enabled: constants.VI_FALSE,
    }
    itype = parsed.interface_type_const
    if itype == constants.InterfaceType.tcpip:
        host = parts["host_address"]
        attrs |= {RA.tcpip_address: host, RA.tcpip_hostname: host}
        attrs |= {RA.tcpip_nodelay: constants.VI_TRUE, RA.tcpip_keepalive: constants.VI_FALSE}
        if "port" in parts:
            attrs[RA.tcpip_port] = int(parts["port"])
        else:
            attrs[RA.tcpip_device_name] = parts.get("lan_device_name", "inst0")
            attrs[RA.tcpip_is_hislip] = constants.VI_FALSE
    elif itype == constants.InterfaceType.gpib:
        secondary = parts.get("secondary_address")
        attrs |= {
            RA.gpib_primary_address: int(parts["primary_address"]),
            RA.gpib_secondary_address: (
                constants.VI_NO_SEC_ADDR if secondary is None else int(secondary)
            ),
            RA.gpib_readdress_enabled: constants.VI_TRUE,
            RA.gpib_unadress_enable: constants.VI_FALSE,
            RA.gpib_ren_state: int(constants.LineState.asserted),
        }
    elif itype == constants.InterfaceType.asrl:
        attrs |= {
            RA.asrl_baud_rate: 9600,
            RA.asrl_data_bits: 8,
            RA.asrl_parity: int(constants.Parity.none),
            RA.asrl_stop_bits: int(constants.StopBits.one),
            RA.asrl_flow_control: int(constants.ControlFlow.none),
            RA.asrl_end_in: int(constants.SerialTermination.termination_char),
            RA.asrl_end_out: int(constants.SerialTermination.none),
            RA.asrl_discard_null: constants.VI_FALSE,
            RA.asrl_allow_transmit: constants.VI_TRUE,
            RA.asrl_replace_char: 0,
            RA.asrl_xon_char: 0x11,
            RA.asrl_xoff_char: 0x13,
            RA.asrl_break_length: 250,
            RA.asrl_break_state: int(constants.LineState.unasserted),
        }
    elif itype == constants.InterfaceType.usb:
        attrs |= {
            RA.manufacturer_id: int(parts["manufacturer_id"], 0),
            RA.model_code: int(parts["model_code"], 0),
            RA.usb_serial_number: parts["serial_number"],
            RA.usb_interface_number: int(parts.get("usb_interface_number") or 0),
            RA.usb_protocol: 1,
            RA.manufacturer_name: "qnode simulated lab",
            RA.model_name: "simulated instrument",
            RA.is_4882_compliant: constants.VI_TRUE,
        }
    return attrs
