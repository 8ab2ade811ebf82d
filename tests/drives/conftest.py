import pytest

from tests.wiki_server import recorded_wiki

# A real HTTP server speaking the MediaWiki API, holding the recorded wiki -------------------


@pytest.fixture
def server():
    fake = recorded_wiki()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def demo(server, settings, tmp_path, monkeypatch):
    """The app pointed at the fake wiki as "demo", with an empty cache and quick retries."""
    settings.WIKIS = {"demo": server.api_url}
    settings.WIKI_CACHE_DIR = tmp_path / "pywikibot"
    settings.WIKI_TIMEOUT = 1.0
    settings.WIKI_ATTEMPTS = 3
    settings.WIKI_MAX_WAIT = 1.0
    settings.WIKI_USER_AGENT_CONTACT = "outreach@example.org"
    # Every test starts in an empty directory: nothing may be written to it.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return server
