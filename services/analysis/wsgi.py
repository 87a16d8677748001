"""gunicorn entry point: ``gunicorn services.analysis.wsgi:app``."""

from services.analysis.service import SPEC
from shared.wsgi import service_app

app = service_app(SPEC)
