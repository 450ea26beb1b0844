# syntax=docker/dockerfile:1
# The hubcost image: the wheel built from this repository, installed into a clean Python.
#
#   docker build -t hubcost:0.1.0 .
#   docker run --rm -e DATABASE_URL=postgresql://... -p 8080:8080 hubcost:0.1.0
#
# Needs BuildKit (the default builder since Docker 23; `DOCKER_BUILDKIT=1` before that) for
# the bind mount that hands the wheel to the final stage without copying it into a layer.
# Both stages run the commands of tests/packaging/wheel_commands.py, which the wheel test
# proves produce a working install; tests/deploy/test_dockerfile.py checks they stay the same.

# Stage 1: build the wheel. Only what .dockerignore lets through reaches this stage.
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime. No compiler (python:3.12-slim has none and nothing here adds one; the
# dependencies are wheels, psycopg[binary] brings its own libpq), no pip cache, no sources.
FROM python:3.12-slim
LABEL org.opencontainers.image.title="hubcost" \
      org.opencontainers.image.description="Daily cost attribution for JupyterHub clusters"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUBCOST_DATA_DIR=/var/lib/hubcost
# A numeric non-root user, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
# HUBCOST_DATA_DIR is its home and only writable place: the embedded PostgreSQL of a
# `docker run` without DATABASE_URL lives there (mount a volume to keep it).
RUN groupadd --system --gid 10001 hubcost \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hubcost \
       --no-create-home --shell /usr/sbin/nologin hubcost \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/hubcost
# The wheel is bind-mounted from the build stage for this one command: it is never a layer
# of this image. pip compiles the bytecode here, as root, so a read-only root filesystem at
# run time costs nothing.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir /wheels/hubcost-*.whl
WORKDIR /var/lib/hubcost
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["hubcost"]
CMD ["serve", "--host", "0.0.0.0"]
