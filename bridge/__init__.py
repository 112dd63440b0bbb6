"""The line's bus and metrics: MQTT topics, message schemas and codec, the paho bus, settings,
recordings, admission of inbound messages, and the InfluxDB writer with its points and dashboards."""
