"""One module per `rivet` verb: thin I/O shells over the engine."""
