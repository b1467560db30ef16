"""Modbus TCP and RTU: register maps, encoding, block optimizer and the driver."""
