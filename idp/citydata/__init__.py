"""The downtown database's data: the de-identified city export (``export``) and the
published operation statistics (``operations``). It reads several domains (kiosk
touches, sensor counts, residents' profiles, registered data), so it stands on the
privacy floor, above them."""
