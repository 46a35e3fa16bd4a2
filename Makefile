# textsift developer entry points. Every target that needs the environment builds it first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.13.0
export TEXTSIFT_DATA ?= $(abspath ../shared/datasets)

.PHONY: setup demo test test-slow bench clean

setup: $(VENV)/.installed

# torch is installed first and explicitly: a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Train on THUCNews titles, evaluate on its test split, predict a few sentences.
demo: setup
	@rm -rf runs/demo
	$(BIN)/textsift train -c thucnews_title --run-dir runs/demo train.progress=false
	$(BIN)/textsift evaluate runs/demo --data $(TEXTSIFT_DATA)/thucnews_title/test.jsonl
	printf '%s\n' "国足客场两球不敌日本队，出线形势严峻" "央行宣布下调存款准备金率0.5个百分点" \
	  "新款游戏主机发布，首批玩家排队抢购" "北京朝阳区新楼盘开盘均价每平米6万" > runs/demo-input.txt
	$(BIN)/textsift predict runs/demo --input runs/demo-input.txt --output - --top-k 2

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/classic.py

clean:
	rm -rf $(VENV) runs .pytest_cache
