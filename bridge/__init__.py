"""MQTT bridge, message schemas, recording/replay and the InfluxDB writer (a later issue)."""
