"""Frame sources, the synthetic world, synchronisation, ZeroMQ transport and recording."""
