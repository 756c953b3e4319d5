# The two commands README.md opens with. Both install what is missing first (tools/install.sh).
SHELL := /bin/bash
PY := tools/venv/bin/python

.PHONY: install demo test bench clean-demo

install:
	@bash tools/install.sh

# The main job: the embedded synth_en recipes end to end (ASR first: it is the TTS recipe's judge).
demo: install
	cd egs/synth_en/asr && ./run.sh
	cd egs/synth_en/tts && ./run.sh

# The whole pytest suite, single-threaded torch (2 cores: threads collapse when the other core is busy); the 15
# slowest tests are listed at the end, so a CI log shows where the suite's time goes.
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=15 tests

bench: install
	OMP_NUM_THREADS=1 $(PY) -m bench

clean-demo:
	rm -rf egs/synth_en/db egs/synth_en/*/data egs/synth_en/*/dump egs/synth_en/*/exp
