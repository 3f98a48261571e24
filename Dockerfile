# The Rivet image: the `rivet` exporter CLI and the operator (`kopf run ...`) in one venv.
#
#   docker build -t rivet:dev .                                         # anywhere (python:3.11-slim)
#   docker build --build-arg BASE_IMAGE=rivet-base:bookworm -t rivet:dev .   # tests/cluster/image.sh
#
# The base image must have python3 (>= 3.11) with the venv module on PATH: python3 is
# /usr/local/bin/python3 in the official slim image and /usr/bin/python3 in Debian's.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV VIRTUAL_ENV=/opt/rivet \
    PATH=/opt/rivet/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python3 -m venv /opt/rivet

# Dependencies first, in a layer that depends on pyproject.toml alone, so a source change
# reuses it. The list is read from pyproject.toml itself (runtime deps + the operator extra).
WORKDIR /src
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print("\n".join(p["project"]["dependencies"] + p["project"]["optional-dependencies"]["operator"] \
+ p["build-system"]["requires"] + ["wheel"]))' > /tmp/requirements.txt \
 && /opt/rivet/bin/pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself (its dependencies are already in the venv).
COPY job/ ./job/
COPY operator/ ./operator/
RUN /opt/rivet/bin/pip install --no-deps --no-build-isolation ".[operator]" \
 && cd / && rm -rf /src \
 && python3 -c 'import rivet' \
 && command -v rivet && command -v kopf

# A passwd entry for the runtime uid: kopf (and getpass) look the user name up.
RUN echo "rivet:x:65532:65532:rivet:/tmp:/usr/sbin/nologin" >> /etc/passwd \
 && echo "rivet:x:65532:" >> /etc/group

WORKDIR /
USER 65532:65532
ENTRYPOINT ["rivet"]
CMD ["--help"]
