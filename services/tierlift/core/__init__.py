"""What every Tierlift service shares: config, logging, telemetry, the bus, gRPC bootstrap,
the model catalog and money arithmetic."""
