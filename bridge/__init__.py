"""MQTT bridge, message schemas, recording/replay and the InfluxDB writer (arrives with the live-mirror issue)."""
