"""People-counting sensors: devices of a company at a place, posting counts of passers-by
per interval and direction (``POST /api/sensor-counts``). No identity ever enters here."""
