"""Simulated field devices on the real protocol servers, for the demo and the tests."""
