"""voiyd-server: validates commands, decides events, appends them, projects and answers queries."""
