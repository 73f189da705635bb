"""pslake: the command line and the settings that tie the parts together."""
