"""gunicorn entry point: ``gunicorn services.notification.wsgi:app``."""

from services.notification.service import SPEC
from shared.wsgi import service_app

app = service_app(SPEC)
