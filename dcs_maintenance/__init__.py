"""dcs-maintenance: scheduled restarts, flushes and stop/start windows for Huawei Cloud DCS instances."""

__version__ = "0.1.0"
