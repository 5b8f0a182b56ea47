"""Digital-signage kiosks: device-flow sign-in, touch events (the city export that counts
them is ``idp.citydata``)."""
