"""A database of the schema before the move (drives as campaigns) migrates forward with every
drive and everything pulled for it intact: counts, totals, ids, dates, who sees what.

django-test-migrations builds the old schema, the test fills it through the historical
models as the old code wrote it, then applies the move (drives.migrations.0002 and
campaigns.migrations.0007) and compares.
"""

from datetime import UTC, date, datetime, timedelta

# The last migration before the move; what it needs (regions, libraries) is migrated with it.
BEFORE = [("campaigns", "0004_contribution_tally")]
AFTER = [
    ("drives", "0004_contribution_drive_columns_moved"),
    ("campaigns", "0007_drives_moved_out"),
]
CREATED = datetime(2025, 12, 1, 9, 30, tzinfo=UTC)


def _fill(apps) -> dict:
    """Three drives as the old code stored them, and an invitation that is no drive."""
    Region = apps.get_model("libraries", "Region")
    Library = apps.get_model("libraries", "Library")
    Librarian = apps.get_model("libraries", "Librarian")
    MailingList = apps.get_model("libraries", "MailingList")
    Campaign = apps.get_model("campaigns", "Campaign")
    Message = apps.get_model("campaigns", "Message")
    Delivery = apps.get_model("campaigns", "Delivery")
    PullRun = apps.get_model("campaigns", "PullRun")
    PullCursor = apps.get_model("campaigns", "PullCursor")
    WikiAccount = apps.get_model("campaigns", "WikiAccount")
    Contribution = apps.get_model("campaigns", "Contribution")
    ContributionTally = apps.get_model("campaigns", "ContributionTally")

    vaud = Region.objects.create(name="Vaud", slug="vaud")
    geneve = Region.objects.create(name="Genève", slug="geneve")
    valais = Region.objects.create(name="Valais", slug="valais")
    libraries = [
        Library.objects.create(name=f"Bibliothèque {n}", slug=f"b-{n}", region=region, city="X")
        for n, region in enumerate([vaud, vaud, geneve])
    ]
    librarians = [
        Librarian.objects.create(
            library=library, name=f"Librarian {n}", email=f"l{n}@example.org", wiki_username=f"L{n}"
        )
        for n, library in enumerate(libraries)
    ]
    lausanne_list = MailingList.objects.create(
        name="Bibliothécaires vaudois", slug="bv", posting_address="bv@example.org", region=vaud
    )
    # 1. A drive that wrote to librarians: its campaign stays, inviting to the drive.
    january = Campaign.objects.create(
        title="#1lib1ref janvier",
        kind="contribution_drive",
        status="sent",
        hashtags="#1lib1ref #1bib1ref",
        wikis="frwiki dewiki",
        starts_on=date(2026, 1, 15),
        ends_on=date(2026, 2, 5),
        public_leaderboard=True,
    )
    january.regions.add(vaud)
    january.mailing_lists.add(lausanne_list)
    Message.objects.create(campaign=january, language="fr", subject="#1lib1ref", body="Bonjour")
    Delivery.objects.create(campaign=january, email="l0@example.org", librarian=librarians[0])
    # 2. A drive and nothing else: it lives on as a drive only.
    may = Campaign.objects.create(
        title="#1lib1ref mai",
        kind="contribution_drive",
        hashtags="#1lib1ref",
        wikis="frwiki",
        starts_on=date(2026, 5, 1),
        ends_on=date(2026, 5, 31),
    )
    may.regions.add(geneve)
    # 3. A drive whose kind a coordinator changed afterwards: its rows still point at it.
    renamed = Campaign.objects.create(
        title="Ancienne opération", kind="invitation", hashtags="#1lib1ref", wikis="frwiki"
    )
    # And an invitation that never was a drive, with a hand-picked librarian of Valais.
    invitation = Campaign.objects.create(title="Wikipermanences", kind="invitation")
    invitation.regions.add(valais)
    Message.objects.create(campaign=invitation, language="fr", subject="Bonjour", body="Bonjour")
    Delivery.objects.create(campaign=invitation, email="l2@example.org", librarian=librarians[2])
    Campaign.objects.filter(pk__in=[january.pk, may.pk, renamed.pk]).update(created_at=CREATED)

    revid = 1000
    for drive, n in ((january, 12), (may, 7), (renamed, 2)):
        for i in range(n):
            revid += 1
            librarian = librarians[i % 3]
            Contribution.objects.create(
                drive=drive,
                librarian=librarian,
                library=librarian.library,
                wiki="frwiki",
                revid=revid,
                parentid=revid - 1,
                page=f"Page {revid}",
                username=librarian.wiki_username,
                timestamp=CREATED + timedelta(days=i),
                summary="#1lib1ref",
                references_added=i % 4,
                tagged=i % 5 != 0,
                counted_in=i % 10 == 5,
            )
        PullRun.objects.create(drive=drive, status="done", users=3, requests=4, edits_kept=n)
        PullRun.objects.create(drive=drive, status="failed", errors="frwiki: HTTP 503")
        PullCursor.objects.create(
            drive=drive, wiki="frwiki", users_key="a" * 64, token="20260120|1234"
        )
    for librarian in librarians:
        WikiAccount.objects.create(
            librarian=librarian, wiki="frwiki", username=librarian.wiki_username, exists=True
        )
    ContributionTally.objects.create(
        region=vaud, week=date(2026, 1, 12), edits=5, references=7, librarians=2, libraries=2,
        computed_at=CREATED,
    )  # fmt: skip
    return {
        "january": january.pk,
        "may": may.pk,
        "renamed": renamed.pk,
        "invitation": invitation.pk,
        "vaud": vaud.pk,
        "geneve": geneve.pk,
    }


def _snapshot(apps, app: str) -> dict:
    """Everything pulled, row by row, as comparable values."""
    Contribution = apps.get_model(app, "Contribution")
    PullRun = apps.get_model(app, "PullRun")
    PullCursor = apps.get_model(app, "PullCursor")
    WikiAccount = apps.get_model(app, "WikiAccount")
    ContributionTally = apps.get_model(app, "ContributionTally")
    if app == "drives":  # each edit stored once, linked to its drive (0003)
        contributions = [
            (
                c.pk,
                link.drive_id,
                c.librarian_id,
                c.library_id,
                c.wiki,
                c.revid,
                c.parentid,
                c.timestamp,
                c.references_added,
                link.tagged,
                link.counted_in,
                c.created_at,
            )
            for c in Contribution.objects.prefetch_related("links")
            for link in c.links.all()
        ]
    else:
        contributions = Contribution.objects.values_list(
            "pk",
            "drive_id",
            "librarian_id",
            "library_id",
            "wiki",
            "revid",
            "parentid",
            "timestamp",
            "references_added",
            "tagged",
            "counted_in",
            "created_at",
        )
    return {
        "contributions": sorted(contributions),
        "runs": sorted(
            PullRun.objects.values_list(
                "pk", "drive_id", "status", "started_at", "users", "requests", "edits_kept",
                "errors",
            )
        ),
        "cursors": sorted(
            PullCursor.objects.values_list("pk", "drive_id", "wiki", "users_key", "token")
        ),
        "accounts": sorted(
            WikiAccount.objects.values_list("pk", "librarian_id", "wiki", "username", "exists")
        ),
        "tallies": sorted(
            ContributionTally.objects.values_list("pk", "region_id", "week", "edits", "references")
        ),
    }  # fmt: skip


def test_every_drive_moves_out_of_campaigns_with_everything_pulled_for_it(migrator):
    old = migrator.apply_initial_migration(BEFORE)
    ids = _fill(old.apps)
    before = _snapshot(old.apps, "campaigns")
    OldCampaign = old.apps.get_model("campaigns", "Campaign")
    old_drives = {
        row["pk"]: row
        for row in OldCampaign.objects.filter(
            pk__in=[ids["january"], ids["may"], ids["renamed"]]
        ).values("pk", "title", "hashtags", "wikis", "starts_on", "ends_on", "public_leaderboard")
    }

    new = migrator.apply_tested_migration(AFTER)

    # Every row pulled for a drive is there, with its id and its drive's id.
    after = _snapshot(new.apps, "drives")
    assert after == before
    assert len(after["contributions"]) == 21 and len(after["runs"]) == 6
    # Each link kept its contribution's id: the drive page's count-in addresses still hold.
    DriveContribution = new.apps.get_model("drives", "DriveContribution")
    assert sorted(DriveContribution.objects.values_list("pk", "contribution_id")) == [
        (row[0], row[0]) for row in before["contributions"]
    ]
    Contribution = new.apps.get_model("drives", "Contribution")
    assert sum(Contribution.objects.values_list("references_added", flat=True)) == sum(
        row[8] for row in before["contributions"]
    )
    # Each drive kept its campaign's id, fields and age.
    Drive = new.apps.get_model("drives", "Drive")
    drives = {
        row["pk"]: row
        for row in Drive.objects.values(
            "pk", "title", "hashtags", "wikis", "starts_on", "ends_on", "public_leaderboard"
        )
    }
    assert drives == old_drives
    assert set(Drive.objects.values_list("created_at", flat=True)) == {CREATED}
    # The regions say who sees it: the campaign's, with its lists' (Vaud); none for the one
    # an ambassador could not see (no region).
    regions = {
        drive.pk: {region.pk for region in drive.regions.all()} for drive in Drive.objects.all()
    }
    assert regions == {
        ids["january"]: {ids["vaud"]},
        ids["may"]: {ids["geneve"]},
        ids["renamed"]: set(),
    }
    # A drive that wrote to people stays a campaign, now inviting to its drive; the others
    # were only drives. The invitation that was no drive is untouched.
    Campaign = new.apps.get_model("campaigns", "Campaign")
    campaigns = dict(Campaign.objects.values_list("pk", "drive_id"))
    assert campaigns == {ids["january"]: ids["january"], ids["invitation"]: None}
    assert Campaign.objects.get(pk=ids["january"]).messages.count() == 1
    assert Campaign.objects.get(pk=ids["january"]).deliveries.count() == 1
    assert Campaign.objects.get(pk=ids["invitation"]).deliveries.count() == 1
    # The ids go on after the copied ones (PostgreSQL's sequences were reset).
    next_drive = Drive.objects.create(title="#1lib1ref 2027", hashtags="#1lib1ref", wikis="frwiki")
    assert next_drive.pk > max(drives)
    PullRun = new.apps.get_model("drives", "PullRun")
    assert PullRun.objects.create(drive=next_drive).pk > max(row[0] for row in before["runs"])
