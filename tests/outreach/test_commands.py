import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from core.roles import COORDINATORS, visible_region_ids
from tests.factories import RegionFactory

pytestmark = pytest.mark.django_db


def test_create_coordinator_prints_a_password_that_logs_in(capsys):
    call_command("create_coordinator", "demo")
    output = capsys.readouterr().out
    password = output.split("password: ")[1].split()[0]
    user = authenticate(username="demo", password=password)
    assert user is not None
    assert user.groups.filter(name=COORDINATORS).exists()
    assert user.has_perm("libraries.change_library")


def test_create_coordinator_if_missing_is_safe_to_run_twice_and_prints_no_password(capsys):
    call_command("create_coordinator", "demo", "--if-missing")
    capsys.readouterr()
    call_command("create_coordinator", "demo", "--if-missing")
    assert "password:" not in capsys.readouterr().out


def test_create_coordinator_refuses_an_existing_name_without_if_missing():
    call_command("create_coordinator", "demo", "--password", "a long enough password")
    with pytest.raises(CommandError):
        call_command("create_coordinator", "demo")


def test_create_coordinator_with_ambassador_of_makes_an_ambassador_of_those_regions(capsys):
    vaud, _ = RegionFactory(name="Vaud", slug="vaud"), RegionFactory(name="Genève")
    call_command("create_coordinator", "amb", "--ambassador-of", "vaud")
    assert "Ambassador account (Vaud) created" in capsys.readouterr().out
    user = get_user_model().objects.get(username="amb")
    assert list(user.ambassador_regions.all()) == [vaud]
    assert user.has_perm("libraries.change_library")
    assert visible_region_ids(user) == {vaud.pk}


def test_create_coordinator_refuses_an_unknown_region():
    RegionFactory(name="Vaud", slug="vaud")
    with pytest.raises(CommandError, match="Unknown region “Valais”. The regions are: vaud"):
        call_command("create_coordinator", "amb", "--ambassador-of", "Valais")
    assert not get_user_model().objects.filter(username="amb").exists()
