"""The live side: the agent service that mirrors the line from MQTT events and publishes the next
PAS batch (`service`: ingest, decide, publish), who follows what it does (`listeners`: the
journal, the metrics points, replay's tape), its write-ahead journal (`journal`), a line
emulator that plays a week onto the bus (`emulator`), and the plant file of `serve --plant`: many
lines, each active or shadow (`plant`)."""
