"""Peripheral circuits around the crossbar: DAC (row drivers) and ADC (column sensing)."""
