"""citybrain's composition roots: the command line and the process entry points."""
