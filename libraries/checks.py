"""System checks of the libraries settings: a misspelt kind in SCORE_WEIGHTS would otherwise
weigh nothing, silently."""

from django.conf import settings
from django.core import checks


@checks.register()
def score_weights_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from .models import ActivitySignal

    unknown = sorted(set(settings.SCORE_WEIGHTS) - set(ActivitySignal.Kind.values))
    if not unknown:
        return []
    return [
        checks.Error(
            f"SCORE_WEIGHTS names kinds of signal that do not exist: {', '.join(unknown)}.",
            hint="The kinds are: " + ", ".join(ActivitySignal.Kind.values) + ".",
            id="libraries.E001",
        )
    ]
