"""gunicorn entry point: ``gunicorn services.monitoring.wsgi:app``."""

from services.monitoring.service import SPEC
from shared.wsgi import service_app

app = service_app(SPEC)
