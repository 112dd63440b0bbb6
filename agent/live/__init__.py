"""The live side: the agent service that mirrors the line from MQTT events and publishes the next
PAS batch (`service`), its write-ahead journal (`journal`), and a line emulator that plays a week
onto the bus (`emulator`)."""
