# citybrain: two commands on a fresh machine.
#   make demo   set up .venv and run every classic controller on the default scenario
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick setup system-deps bench-all bench-corpus bench-suite bench-suite-tuning bench-kernel bench-vision bench-loop bench-emergency report-grid4x4 detector scenarios clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/citybrain demo

# What the tests need from the system: Debian's chromium for the report test (these machines run
# as root; elsewhere run it with sudo). Nothing is installed when it is already there.
system-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (the report test opens the report in it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

scenarios: $(STAMP)
	$(BIN)/citybrain scenarios generate

# Decision time of the optimiser on synthetic grids of 1 to 10,000 intersections (one core).
bench-kernel: $(STAMP)
	$(BIN)/citybrain bench-kernel --readings traffic,random --json benchmarks/results/kernel.json --markdown benchmarks/results/kernel.md

# The committed benchmark tables (about 30 minutes on 2 cores).
RESCO ?= ../shared/scenarios/resco
bench-all: $(STAMP)
	$(BIN)/citybrain bench --scenario single --scenario arterial --scenario grid4x4 --scenario grid10x10 --scenario crosswalk \
	  --seed 1 --seed 2 --seed 3 --json benchmarks/results/own.json --markdown benchmarks/results/own.md \
	  --title "The optimiser and the classic controllers on the own scenario library"
	$(BIN)/citybrain bench $(foreach s,cologne1 cologne3 ingolstadt1 ingolstadt7 grid4x4,--scenario $(RESCO)/$(s)) \
	  --protocol resco --plain-sumo --seed 1 --seed 2 --seed 3 --seed 4 --seed 5 --json benchmarks/results/resco.json \
	  --markdown benchmarks/results/resco.md \
	  --title "The optimiser and the classic controllers on the RESCO scenarios (RESCO's protocol)"

# Every scenario of the outside corpus and the five RESCO ones, every controller, seeds 1-3, under
# one set of rules for all (the default: each transition's own yellow, raised to 3 s; SUMO's fixed
# and actuated included). About two hours on 2 cores.
CORPUS ?= ../shared/scenarios/corpus
bench-corpus: $(STAMP)
	$(BIN)/citybrain bench $(foreach s,$(sort $(wildcard $(CORPUS)/*/)),--scenario $(s)) \
	  $(foreach s,cologne1 cologne3 ingolstadt1 ingolstadt7 grid4x4,--scenario $(RESCO)/$(s)) \
	  --seed 1 --seed 2 --seed 3 --json benchmarks/results/corpus.json --markdown benchmarks/results/corpus.md \
	  --title "Every controller on the outside corpus and the RESCO scenarios, one set of rules for all"

# The generalisation suite (benchmarks/suites/generalisation.toml): both halves on the checking
# seeds 4-6, every controller under the default rules, with the judgement of mpc. The stress set
# is generated first where it is missing. Several hours on 2 cores; `--jobs` takes every core.
SUITE ?= benchmarks/suites/generalisation.toml
bench-suite: $(STAMP) | scenarios/stress/rand-3/rand-3.sumocfg
	$(BIN)/citybrain bench --suite $(SUITE) --json benchmarks/results/suite.json --markdown benchmarks/results/suite.md

# The tuning half on the tuning seeds 1-3: the only runs settings may be tuned on.
bench-suite-tuning: $(STAMP) | scenarios/stress/rand-3/rand-3.sumocfg
	$(BIN)/citybrain bench --suite $(SUITE) --half tuning --json runs/suite-tuning.json --markdown runs/suite-tuning.md

scenarios/stress/rand-3/rand-3.sumocfg: | $(STAMP)
	$(BIN)/citybrain scenarios stress

# The detector: render a dataset from the own scenarios (single is kept out for testing) and train
# it from scratch, offline (about an hour on 2 CPU cores; `--device 0` on a GPU machine).
detector: $(STAMP)
	$(BIN)/citybrain vision dataset --out data/vehicles --frames 1800
	$(BIN)/citybrain vision train --data data/vehicles/data.yaml --epochs 35

# The engineer's report for the own 4x4 grid under every controller (HTML + CSV, committed).
report-grid4x4: $(STAMP)
	$(BIN)/citybrain bench --scenario grid4x4 --seed 1 --seed 2 --seed 3 --report runs/report-grid4x4 \
	  --title "grid4x4: every controller, seeds 1-3"
	mkdir -p benchmarks/results/report-grid4x4
	cp runs/report-grid4x4/report.html runs/report-grid4x4/hcm.csv runs/report-grid4x4/intervals.csv runs/report-grid4x4/entries.csv \
	  benchmarks/results/report-grid4x4/

# Emergency vehicles with and without priority (grid4x4, arterial; 3 seeds).
bench-emergency: $(STAMP)
	$(BIN)/citybrain bench-emergency --json benchmarks/results/emergency.json --markdown benchmarks/results/emergency.md

# Camera pipeline accuracy (held-out scenario) and detector speed per core.
bench-vision: $(STAMP)
	$(BIN)/citybrain bench-vision --json benchmarks/results/vision.json --markdown benchmarks/results/vision.md

# Brain service latency and a 10,000 msg/s load run.
bench-loop: $(STAMP)
	$(BIN)/citybrain bench-loop --json benchmarks/results/loop.json --markdown benchmarks/results/loop.md

clean:
	rm -rf $(VENV) runs *.egg-info
