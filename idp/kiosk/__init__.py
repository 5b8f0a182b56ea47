"""Digital-signage kiosks: device-flow sign-in, touch events, the de-identified city export."""
