"""`voiyd`: the operator command: `voiyd up` runs a whole local cluster in the foreground."""
