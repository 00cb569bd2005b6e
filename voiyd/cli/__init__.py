"""voiydctl: the command-line client. Publishes commands, reads views, tails events."""
