"""One screen per module; each is a mode of the app, switched with a single key."""
