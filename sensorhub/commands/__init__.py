"""One module per ``sensorhub`` subcommand; see :mod:`sensorhub.cli`."""
