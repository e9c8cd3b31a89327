# kms-ws in a container: docs/operations.md, "Running in a container".
#   docker build -t kms-ws .
#   docker run -d --name kms-ws -p 127.0.0.1:5985:5985 -v kms-data:/var/lib/kms-ws kms-ws

# The wheel is built in a stage of its own: the sources stay out of the image.
FROM python:3.13-slim AS wheel
COPY . /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheel /src

FROM python:3.13-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=wheel /wheel /tmp/wheel
RUN pip install --no-cache-dir /tmp/wheel/*.whl && rm -rf /tmp/wheel
# The server's own user (fixed ids, so a bind-mounted data directory can be chowned to
# 10001:10001), and the data directory, private to it: database, master key, log.
RUN groupadd --system --gid 10001 kms-ws \
    && useradd --system --uid 10001 --gid kms-ws --home-dir /var/lib/kms-ws \
       --shell /usr/sbin/nologin kms-ws \
    && install -d -m 0700 -o kms-ws -g kms-ws /var/lib/kms-ws
USER 10001:10001
VOLUME ["/var/lib/kms-ws"]
EXPOSE 5985
# Liveness: GET /healthz over plain HTTP on the container's loopback. A server run with
# --tls-cert serves HTTPS only: give `docker run` a --health-cmd asking https:// instead.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:5985/healthz', timeout=5)"]
ENTRYPOINT ["kms-ws"]
# All interfaces inside the container; publish the port where clients reach it. Passwords
# travel only over TLS: mount a certificate and key and add --tls-cert and --tls-key.
CMD ["serve", "--data-dir", "/var/lib/kms-ws", "--host", "0.0.0.0", "--port", "5985"]
