"""``practice-bot compliance``: the evidence pack a practice hands the ICO or the CQC.

Four parts, written from the configuration in use and the store's own counts: a record of
processing (UK GDPR Article 30), DPIA screening notes, a paragraph for the practice's privacy
notice, and the contact log's current figures. :func:`build_pack` turns settings and figures
into an :class:`EvidencePack`, every sentence in it; :func:`render_markdown` and
:func:`render_html` only lay that out, so the two files always say the same thing.

The pack describes; it does not decide. Wherever the law leaves a choice to the controller
(its lawful basis, whether a full DPIA is needed), the text says the practice confirms or
decides, and it says it is not legal advice. It names no secret and no person: settings give
it names, addresses and numbers the practice publishes, and the store gives it counts only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.admin import PAGES
from bot.events import Channel
from bot.languages import join_words
from bot.settings import Settings
from bot.store import LogFigures, describe_store
from bot.store.schema import DEDUPE_DAYS, ENDED_JOB_DAYS

__all__ = [
    "Check",
    "EvidencePack",
    "Item",
    "Notice",
    "build_pack",
    "render_html",
    "render_markdown",
]

# How long retention keeps finished jobs and the keys that stop a message being answered twice.
_BOOKKEEPING_DAYS = max(ENDED_JOB_DAYS, DEDUPE_DAYS)

# How a patient knows each app, and the Meta product the practice's account is connected to.
_APPS = {
    Channel.WHATSAPP: "WhatsApp",
    Channel.MESSENGER: "Facebook Messenger",
    Channel.INSTAGRAM: "Instagram",
}
_PRODUCTS = {
    Channel.WHATSAPP: "the WhatsApp Business Platform (Cloud API)",
    Channel.MESSENGER: "the Messenger Platform (Facebook Page messaging)",
    Channel.INSTAGRAM: "Instagram messaging (Instagram professional account)",
}

SECTIONS = (
    "1. Record of processing (UK GDPR Article 30)",
    "2. DPIA screening notes",
    "3. A paragraph for the practice's privacy notice",
    "4. Current figures",
)


@dataclass(frozen=True, slots=True)
class Item:
    """A labelled entry: one line is a sentence, several are a list."""

    label: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Check:
    """One question of the DPIA screening, its short answer and why."""

    question: str
    answer: str
    note: str


@dataclass(frozen=True, slots=True)
class Notice:
    """The privacy-notice paragraph in one language: a bold lead-in, then the text."""

    title: str
    text: str
    language: str = "en"  # the HTML lang attribute of a paragraph in another language


@dataclass(frozen=True, slots=True)
class EvidencePack:
    """Everything one practice's pack says, and the facts it was written from."""

    practice: str  # the practice's name
    slug: str  # its folder in a group; "" alone
    generated: datetime  # UTC
    version: str  # practice-bot's
    about: tuple[str, ...]
    record: tuple[Item, ...]
    screening_intro: str
    screening: tuple[Check, ...]
    screening_notes: tuple[str, ...]
    notice_intro: str
    notices: tuple[Notice, ...]  # English, then Welsh when the practice replies in Welsh
    figures: tuple[Item, ...]  # one line each
    figure_notes: tuple[str, ...]
    channels: tuple[Channel, ...]  # the channels that are on, in the order of ``Channel``
    retention_days: int
    log: LogFigures

    @property
    def title(self) -> str:
        """The pack's heading."""
        return f"Data protection evidence pack: {self.practice}"

    @property
    def generated_text(self) -> str:
        """When it was generated, as a person reads it: ``30 November 2026, 14:05 UTC``."""
        at = self.generated
        return f"{at.day} {at:%B %Y, %H:%M} UTC"

    @property
    def sections(self) -> tuple[str, ...]:
        """The four section headings."""
        return SECTIONS


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _joined(words: Sequence[str], last: str) -> str:
    """``a, b and c`` (``last``: "and" or "or")."""
    return join_words(words, f" {last} ")


def _on(settings: Settings) -> tuple[Channel, ...]:
    return tuple(c for c, state in settings.channel_states().items() if state.on)


def build_pack(
    settings: Settings,
    figures: LogFigures,
    *,
    generated: datetime,
    version: str,
    slug: str = "",
    group_size: int = 1,
) -> EvidencePack:
    """One practice's evidence pack from its settings and its store figures.

    ``slug`` and ``group_size`` say which practice of how big a group it is ("" and 1 alone).
    Pure: the same arguments always give the same pack.
    """
    channels = _on(settings)
    days = settings.contact_log_retention_days
    about = (
        "Notes and figures for the practice to keep with its data protection records, or to "
        "give the Information Commissioner's Office (ICO) or the Care Quality Commission "
        "(CQC) when they ask. They cover the automatic replies to messages sent to the "
        "practice on its messaging apps, and nothing else the practice does.",
        "They are written from the service's configuration and database at the moment shown "
        "above. They are not legal advice: where they say the practice confirms or decides "
        "something, that choice is the practice's (with its data protection officer, if it "
        "has one).",
    )
    return EvidencePack(
        practice=settings.practice_name,
        slug=slug,
        generated=generated,
        version=version,
        about=about,
        record=_record(settings, channels, slug=slug, group_size=group_size),
        screening_intro=(
            "A first look at whether the automatic replies need a full data protection "
            "impact assessment (DPIA, UK GDPR Article 35). The practice decides."
        ),
        screening=_screening(figures, days, group_size=group_size),
        screening_notes=_screening_notes(),
        notice_intro=(
            "For patients, in plain English. Adapt it to the rest of the practice's privacy "
            "notice; it follows the configuration above, so generate the pack again after "
            "changing the apps or the retention period."
        ),
        notices=(
            _notice(settings, channels, days),
            *([_welsh_notice(settings, channels, days)] if "cy" in settings.languages else []),
        ),
        figures=_figures(figures, days),
        figure_notes=_figure_notes(figures, days, slug=slug),
        channels=channels,
        retention_days=days,
        log=figures,
    )


def _record(
    settings: Settings, channels: tuple[Channel, ...], *, slug: str, group_size: int
) -> tuple[Item, ...]:
    """The record of processing: what Article 30(1) asks a controller to write down."""
    apps = _joined([_APPS[c] for c in channels], "or") or "its messaging apps (none is on yet)"
    controller = [settings.practice_name]
    if settings.practice_email:
        controller.append(f"Email: {settings.practice_email}")
    controller.append(f"Phone: {settings.practice_phone}")
    if settings.practice_website:
        controller.append(f"Website: {settings.practice_website}")
    if slug:
        controller.append(
            f"This practice is one of {group_size} run by one group deployment (its folder: "
            f"{slug}). If the group's company is the controller, the practice names it here."
        )
    controller.append(
        "Data protection officer: the practice adds the name and contact details of its DPO, "
        "if it has one."
    )
    states = settings.channel_states()
    channel_lines = [
        f"{_APPS[c]}: through {_PRODUCTS[c]}"
        + ("" if states[c].sends else "; in dry-run, so replies are recorded but not sent")
        for c in channels
    ] or ["None is configured yet: no message reaches the service."]
    where, kind = _where(settings.database_url)
    return (
        Item("Processing", (f"Automatic replies to people who message the practice on {apps}.",)),
        Item("Controller", tuple(controller)),
        Item("Apps connected", tuple(channel_lines)),
        Item(
            "Purposes",
            (
                "To send each person who messages the practice an automatic reply saying that "
                "clinical advice can't be given by message, and how to reach the practice.",
                "To keep a record that a contact happened and what the service did about it, "
                "so the practice can check that people were answered, and so one person does "
                "not get the same automatic reply again and again.",
            ),
        ),
        Item(
            "Lawful basis",
            (
                "The practice confirms its lawful basis under Article 6 and, because the fact "
                "of contact may be health data, its condition under Article 9: typically "
                "Article 9(2)(h), the provision of health care, with the Data Protection Act "
                "2018, Schedule 1, Part 1, paragraph 2.",
            ),
        ),
        Item(
            "Data subjects",
            (
                f"People who message the practice on {apps}: mostly patients, and also "
                "people thinking of becoming patients, relatives, carers and anyone else who "
                "writes.",
            ),
        ),
        Item(
            "Personal data",
            (
                "The time of each contact (UTC).",
                "The app it came through.",
                "A keyed pseudonym of the sender: a code made from their phone number or app "
                "id with HMAC-SHA256 and a secret key kept outside the database. Without the "
                "key the code cannot be traced back to the number.",
                "The kind of contact: a message, a WhatsApp welcome request, or a button pressed.",
                "The outcome: for example replied, not replied because the person had a reply "
                "recently, or left to staff who were already answering.",
                "The file name of the reply text that was sent (for example closed.txt), "
                "never the text.",
                "While a reply waits to be sent, and only then: the sender's phone number or "
                "app id, encrypted (AES-GCM), so the reply can reach them. It is erased as "
                "soon as the reply is sent or given up.",
                "Never kept: what people write, photos, files or other media, locations, "
                "names or profile names.",
            ),
        ),
        Item(
            "Special category data",
            (
                "The fact that someone contacted the practice may reveal that they are, or "
                "want to be, its patient: a treatment relationship, which may be health data "
                "(Article 9). Nothing else about anyone's health is recorded.",
            ),
        ),
        Item(
            "Recipients and processors",
            (
                *(
                    [
                        f"Meta Platforms, as the provider of "
                        f"{_joined([_PRODUCTS[c] for c in channels], 'and')}: messages reach "
                        "the practice through Meta, and the automatic replies go back the same "
                        "way. Meta's own terms, which the practice accepted when it connected "
                        "these accounts, set out Meta's role and where Meta processes data."
                    ]
                    if channels
                    else []
                ),
                f"The hosting of this service and its database ({where}): the practice names "
                "who provides it (its IT supplier or hosting company) and where.",
                "No one else: the service sends nothing to any other organisation.",
            ),
        ),
        Item(
            "Where the data is kept",
            (
                f"{kind}: {where}.",
                "Backups of that database, where the practice makes them.",
                "The service's own log keeps no message content, names, numbers, ids or "
                "pseudonyms.",
            ),
        ),
        Item(
            "How long",
            (
                f"Contact records: {_plural(settings.contact_log_retention_days, 'day')}, "
                "then deleted automatically (the service checks every day).",
                "The encrypted number or id of a waiting reply: until the reply is sent or "
                "given up; normally seconds, at most "
                f"{_plural(round(settings.reply_max_age_hours), 'hour')}.",
                "Finished reply jobs (without the number or id) and the codes that stop a "
                f"message being answered twice: {_plural(_BOOKKEEPING_DAYS, 'day')}.",
                "The rows that apply the reply rules (when a person last had a reply, when "
                "staff answered by hand): no longer than the contact records.",
                "Counts of deletions (section 4): kept; they say how many, never whose.",
                "Backups: the practice keeps them no longer than the retention period.",
            ),
        ),
        Item("Security measures", _security(kind)),
    )


def _where(url: str) -> tuple[str, str]:
    """Where the database is, from its URL: the place, and the kind of database, in words.

    ``describe_store`` gives the kind and the place only, never a user name or password.
    """
    kind, _, place = describe_store(url).partition(" ")
    if kind == "sqlite":
        return place, "An SQLite database file on the server that runs the service"
    return place, "A PostgreSQL database"


def _security(kind: str) -> tuple[str, ...]:
    measures = [
        "Pseudonyms: senders are recorded only as keyed codes (HMAC-SHA256); the key is kept "
        "outside the database and its backups.",
        "Encryption: the one number or id ever held, for a reply waiting to be sent, is "
        "encrypted with AES-GCM and erased when the reply ends.",
    ]
    if kind.startswith("An SQLite"):
        measures.append(
            "Secure deletion: deleted records are overwritten in the database file (SQLite's "
            "secure delete), and the file and its folder are readable by the service's own "
            "account only."
        )
    else:
        measures.append(
            "Deleted rows: PostgreSQL reuses their space through autovacuum; the practice "
            "keeps autovacuum on and the database server's disk encrypted."
        )
    measures.extend(
        (
            "No message content in the database, the log or the metrics; log lines pass "
            "through a reviewed list of fields.",
            "Messages are accepted only when they carry Meta's valid signature.",
            "The practice adds its own measures: who can reach the server, backups, updates.",
        )
    )
    return tuple(measures)


def _screening(figures: LogFigures, days: int, *, group_size: int) -> tuple[Check, ...]:
    scale = (
        f"The contact log holds {_plural(figures.records, 'record')} now, each kept "
        f"{_plural(days, 'day')}. The GDPR's recital 91 says processing of patients' data by "
        "an individual doctor or other health professional is not normally large scale."
    )
    if group_size > 1:
        scale += f" This service runs {group_size} practices together: consider them as a whole."
    return (
        Check(
            "Special category data, or data it can be inferred from?",
            "Yes",
            "The fact of contact may reveal a treatment relationship. Nothing else about "
            "health is recorded.",
        ),
        Check("Large scale?", "For the practice to judge", scale),
        Check(
            "Systematic monitoring?",
            "No",
            "Only contacts that people start themselves are recorded. Nobody is tracked, "
            "profiled or followed.",
        ),
        Check(
            "New technology?",
            "No",
            "Automatic replies through Meta's business messaging services: no artificial "
            "intelligence, no profiling.",
        ),
        Check(
            "Automated decisions with legal or similarly significant effects (Article 22)?",
            "None",
            "The service sends a reply and nothing else. It decides nothing about anyone's "
            "care, appointments or access to services; staff read and answer messages as "
            "before.",
        ),
        Check(
            "Message content kept?",
            "No",
            "What people write or send is never stored, logged or passed on by the service.",
        ),
        Check(
            "Vulnerable people?",
            "Possibly",
            "Patients can be vulnerable. The reply gives no clinical advice, asks people not to "
            "send health details by message, and out of hours points to urgent help and 999.",
        ),
        Check(
            "Data matched or combined with other data?",
            "No",
            "The contact log is not linked to the practice's patient records or to anything else.",
        ),
    )


def _screening_notes() -> tuple[str, ...]:
    return (
        "Two points may apply: possible health data, and possibly vulnerable people. The "
        "European guidelines on DPIAs (WP248), which the ICO's guidance draws on, treat "
        "processing that meets two of their criteria as likely to need a DPIA. On the other "
        "side of the scale: little data is kept, under pseudonyms, for a short time.",
        "A practice may therefore choose to record a short DPIA even if it decides one is not "
        "required; the record of processing above and these notes give most of what it "
        "needs.",
        "For the practice to decide: whether a full DPIA is needed, and to write down the "
        "decision and the reasons. These notes are not legal advice.",
    )


def _notice(settings: Settings, channels: tuple[Channel, ...], days: int) -> Notice:
    names = [_APPS[c] for c in channels]
    apps_or = _joined(names, "or") or "messaging apps"
    apps_and = _joined(names, "and") or "those apps"
    if settings.practice_email:
        reach = f"email us at {settings.practice_email} or call us on {settings.practice_phone}"
    else:
        reach = f"call us on {settings.practice_phone}"
    return Notice(
        title=f"Messages on {apps_or}.",
        text=(
            f"When you message {settings.practice_name} on {apps_or}, you get an automatic "
            "reply. It tells you that we can't give clinical advice by message, and how to "
            "reach us. To do this, we keep a short record that you contacted us: which app "
            "you used, when, and whether the automatic reply was sent. The record is kept "
            "under a code instead of your name or number, and deleted automatically after "
            f"{_plural(days, 'day')}. It never includes what you write or send us. Your "
            f"messages themselves stay in the app, and Meta's own terms and privacy policy "
            f"apply when you use {apps_and}. To ask about this record, or to ask us to "
            f"delete it, {reach}."
        ),
    )


def _welsh_notice(settings: Settings, channels: tuple[Channel, ...], days: int) -> Notice:
    """The same paragraph in Welsh, for a practice that replies in Welsh. The practice's name
    stands apart ("aton ni, {name},") so no mutation can misspell it."""
    names = [_APPS[c] for c in channels]
    apps_or = _welsh_joined(names, "neu") or "apiau negeseua"
    apps_and = _welsh_joined(names, "a") or "yr apiau hynny"
    reach = f"ffoniwch ni ({settings.practice_phone})"
    if settings.practice_email:
        reach = f"anfonwch e-bost atom ({settings.practice_email}) neu {reach}"
    return Notice(
        title=f"Negeseuon ar {apps_or}.",
        text=(
            f"Pan fyddwch yn anfon neges aton ni, {settings.practice_name}, ar {apps_or}, "
            "byddwch yn cael ateb awtomatig. Mae'n dweud na allwn roi cyngor clinigol drwy "
            "neges, a sut i gysylltu â ni. I wneud hyn, rydym yn cadw cofnod byr eich bod wedi "
            "cysylltu â ni: pa ap a ddefnyddiwyd gennych, pryd, ac a anfonwyd yr ateb "
            "awtomatig. Caiff y cofnod ei gadw dan god yn lle eich enw neu eich rhif, a'i "
            f"ddileu'n awtomatig ar ôl {days} diwrnod. Nid yw byth yn cynnwys yr hyn rydych "
            "yn ei ysgrifennu neu'n ei anfon atom. Mae eich negeseuon eu hunain yn aros yn "
            "yr ap, ac mae telerau a pholisi preifatrwydd Meta ei hun yn berthnasol pan "
            f"fyddwch yn defnyddio {apps_and}. I holi am y cofnod hwn, neu i ofyn i ni ei "
            f"ddileu, {reach}."
        ),
        language="cy",
    )


def _welsh_joined(words: Sequence[str], last: str) -> str:
    """``WhatsApp, Facebook Messenger ac Instagram``: "a" (and) is "ac" before a vowel."""
    word = "ac" if last == "a" and words and words[-1][:1].lower() in "aeiou" else last
    return join_words(words, f" {word} ")


def _figures(figures: LogFigures, days: int) -> tuple[Item, ...]:
    if figures.oldest_age_days is None:
        oldest = "none: the log is empty"
    elif figures.oldest_age_days == 0:
        oldest = "less than a day"
    else:
        oldest = _plural(figures.oldest_age_days, "day")
    since = figures.counted_since
    return (
        Item("Records in the contact log", (str(figures.records),)),
        Item("Age of the oldest record", (oldest,)),
        Item("Retention period", (_plural(days, "day"),)),
        Item("Erasure requests carried out", (str(figures.erasure_requests),)),
        Item("Records deleted by erasure requests", (str(figures.erased_records),)),
        Item("Records deleted automatically (retention)", (str(figures.retention_records),)),
        Item("Automatic deletion runs that deleted records", (str(figures.retention_runs),)),
        Item(
            "Deletions counted since",
            (f"{since.day} {since:%B %Y}" if since is not None else "not recorded",),
        ),
    )


def _figure_notes(figures: LogFigures, days: int, *, slug: str) -> tuple[str, ...]:
    notes = [
        "Counted without identifiers: the database keeps only how many requests, runs and "
        "records there were each day, never whose.",
        "Deletions are counted from the day this version of practice-bot first opened the "
        "database; erasures and automatic deletions before then are not in these figures.",
    ]
    if slug:
        notes.append(f"These figures are this practice's only (folder {slug}).")
    # The service deletes once a day, so a record can be up to a day past the period.
    if figures.oldest_age_days is not None and figures.oldest_age_days > days + 1:
        notes.append(
            "The oldest record is older than the retention period: the automatic deletion has "
            "not run lately. Check that the service is running, or run practice-bot contacts "
            "purge."
        )
    return tuple(notes)


# -- layout ---------------------------------------------------------------------------------

# Characters Markdown could read as formatting; a backslash makes each literal.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#])")
_LIST_START = re.compile(r"^(\s*)([-+]|\d+[.)])(\s)")


def _md(text: str, *, block: bool = False) -> str:
    """``text`` as Markdown shows it literally (practice names and addresses included).

    ``block``: the text starts a paragraph or a list item, where ``1.`` or ``-`` would
    start a list of its own.
    """
    escaped = _MARKDOWN.sub(r"\\\1", text)
    return _LIST_START.sub(r"\1\\\2\3", escaped) if block else escaped


def render_markdown(pack: EvidencePack) -> str:
    """The pack as Markdown: headings, lists and tables."""
    record, screening, notice, figures = pack.sections
    out = [
        f"# {_md(pack.title)}",
        "",
        f"Generated {_md(pack.generated_text)} by practice-bot {_md(pack.version)}.",
        "",
    ]
    for paragraph in pack.about:
        out += [_md(paragraph, block=True), ""]
    out += [f"## {_md(record)}", ""]
    for item in pack.record:
        if len(item.lines) == 1:
            out += [f"**{_md(item.label)}:** {_md(item.lines[0])}", ""]
        else:
            out += [f"**{_md(item.label)}**", ""]
            out += [f"- {_md(line, block=True)}" for line in item.lines]
            out.append("")
    out += [f"## {_md(screening)}", "", _md(pack.screening_intro, block=True), ""]
    out += ["| Question | Answer | Notes |", "|---|---|---|"]
    out += [f"| {_md(c.question)} | {_md(c.answer)} | {_md(c.note)} |" for c in pack.screening]
    out.append("")
    for paragraph in pack.screening_notes:
        out += [_md(paragraph, block=True), ""]
    out += [f"## {_md(notice)}", "", _md(pack.notice_intro, block=True), ""]
    for said in pack.notices:
        out += [f"> **{_md(said.title)}** {_md(said.text)}", ""]
    out += [f"## {_md(figures)}", "", "| Figure | Value |", "|---|---|"]
    out += [f"| {_md(item.label)} | {_md(item.lines[0])} |" for item in pack.figures]
    out.append("")
    for paragraph in pack.figure_notes:
        out += [_md(paragraph, block=True), ""]
    out += ["---", "", _md(f"practice-bot {pack.version}, generated {pack.generated_text}."), ""]
    return "\n".join(out)


def render_html(pack: EvidencePack) -> str:
    """The pack as one printable page: inline styles, no script, nothing fetched."""
    return PAGES.get_template("compliance.html").render(pack=pack)
