"""Motion analysis: per-sensor orientation fusion, calibration, joint angles, heading-drift handling.

Pure array maths; nothing in this package does I/O. Frames and units follow docs/architecture.md.
"""
