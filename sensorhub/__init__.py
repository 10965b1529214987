"""sensorhub: hip rotation from two wearable IMUs, from BLE notification to scored reps."""

__version__ = "0.1.0"
