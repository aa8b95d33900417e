# The one image every Tierlift service runs from (the chart picks the module per Deployment).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services ./services
COPY migrations ./migrations
# Editable install keeps migrations/ next to the package, where `tierlift migrate` finds it.
# The classifier's static embeddings come with services/ (classifier/model/static-minilm). Beyond
# `server`, the image keeps `minilm` (torch runs MiniLM for the assessor's embedding judge) and
# `eval` (`tierlift calibrate --from-ledger`). torch from PyTorch's CPU index: PyPI's default build
# carries CUDA (several GB) that nothing here uses.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -e '.[server,eval,minilm]' \
    && useradd --uid 10001 --user-group --no-create-home tierlift
USER 10001
ENV PYTHONUNBUFFERED=1 HOME=/tmp
