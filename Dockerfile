FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY lua ./lua
RUN pip install -c constraints.txt . \
 && useradd --create-home --uid 10001 holdsvc \
 && install -d -o holdsvc -g holdsvc -m 700 /data

USER holdsvc
ENV HOLDSVC_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
CMD ["holdsvc", "serve", "--host", "0.0.0.0"]
