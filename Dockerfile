# sensorhub service image (used by docker-compose.yml). BLE goes through the host's BlueZ over the
# mounted D-Bus socket, so no Bluetooth packages are needed in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SENSORHUB_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md* ./
COPY sensorhub ./sensorhub
RUN pip install . && useradd --system --home-dir /data sensorhub && mkdir -p /data && chown sensorhub /data

VOLUME ["/data"]
ENTRYPOINT ["sensorhub"]
CMD ["serve"]
