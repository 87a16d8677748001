# One image for every service of the SLA Support Suite; the command picks the process.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY contracts ./contracts
COPY deploy ./deploy
RUN pip install --no-cache-dir . && python -m compileall -q /usr/local/lib/python3.11 >/dev/null
USER nobody
EXPOSE 8081 8082 8083 8084 8085
CMD ["slactl", "--help"]
