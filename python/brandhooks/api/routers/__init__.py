"""One router per resource; create_app (api/app.py) includes them."""
