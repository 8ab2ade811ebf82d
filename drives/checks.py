"""System checks of the drives settings: a User-Agent contact the wikis would refuse."""

from django.core import checks


@checks.register()
def user_agent_contact_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from django.utils import translation

    from .wiki import contact_problem

    with translation.override("en"):
        problem = contact_problem()
    if not problem:
        return []
    return [
        checks.Warning(
            problem,
            hint="For example WIKI_USER_AGENT_CONTACT=outreach@your-chapter.org. "
            "Pulls from public wikis are refused until then.",
            id="drives.W001",
        )
    ]
