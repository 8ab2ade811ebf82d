# The two commands of README.md: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: run test install messages makemessages lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalls only when a requirements file changed.
$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Compiles the gettext catalogues with Babel, so no GNU gettext is needed on the machine.
messages: install
	$(BIN)/pybabel compile --domain=django --directory=locale --statistics

# Extracts the strings to translate (needs GNU gettext's xgettext: apt-get install gettext).
makemessages: install
	$(BIN)/python manage.py makemessages --locale=fr --locale=de --no-obsolete --ignore=.venv --ignore=staticfiles --ignore=tests

run: messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py create_coordinator demo --if-missing
	$(BIN)/python manage.py runserver $(HOST)

# On every core: each pytest-xdist worker has its own test database and loopback servers;
# worksteal keeps both busy to the end. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= auto
test: messages
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
