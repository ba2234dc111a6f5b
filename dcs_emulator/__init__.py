"""A local Huawei Cloud DCS v2 emulator for tests and demos: real HTTP on loopback, SDK-HMAC-SHA256 checked,
an instance state machine, fault injection and a request log. Not part of the deployment package.

    from dcs_emulator import Emulator, Fault
    with Emulator(ak="AK", sk="SK", projects=["p1"]) as emu:
        emu.add_instance("p1", name="cache-1")
        ...  # DcsClient.new_builder().with_endpoints([emu.url]) ...
"""

from .emulator import Emulator
from .faults import Fault

__all__ = ["Emulator", "Fault"]
