"""The evidence views: the specificity ranking on Neurons, the progressive layer-matched control
(mean ± sd, p, the signature verdict) in the Interventions readout, and the flipped examples
dialog — Pilot checks and snapshots at 80×24 and 100×30, on the FakeEngine."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import DataTable, Select, Static

from labconsole.ui.dialogs.flipped_examples import FlippedExamplesDialog
from labconsole.ui.fake_evidence import example_image
from labconsole.ui.screenshots import settle
from labconsole.ui.widgets.thumbnails import half_block_lines, thumbnail_rows

from .helpers import notifications, open_session, wait_for
from .test_fits_80x24 import assert_nothing_is_cut

MARKED = [("layer3.0.conv2", 4), ("layer2.0.conv1", 7), ("layer3.0.downsample.0", 12)]
SIZES = [(80, 24), (100, 30)]


def status_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


# -- walks (also the snapshots' run_before) ---------------------------------------------------------


async def show_specific_ranking(pilot: Any) -> None:
    app = pilot.app
    await open_session(pilot)
    await pilot.press("2")
    screen = app.screen
    await wait_for(pilot, lambda: screen.query_one("#ranking", DataTable).row_count == 10)
    screen.query_one("#group", Select).value = "waterbird-land"
    await pilot.pause()
    screen.query_one("#score", Select).value = "specific"
    await wait_for(pilot, lambda: screen.ranking_score == "specific" and not screen.query_one("#rank-status").busy)
    await settle(pilot)


async def start_matched_readout(pilot: Any, hold_after_first_draws: bool, counts: list[int] | None = None) -> Any:
    """``counts`` collects the draw counts the status line is given."""
    app = pilot.app
    await open_session(pilot)
    app.set_marked(MARKED)
    await pilot.press("3")
    screen = app.screen
    screen.query_one("#control", Select).value = "matched"
    await pilot.pause()
    if hold_after_first_draws:
        app.session.partial_gate = threading.Event()
    if counts is not None:
        show = screen._show_draws_walked

        def counted(done: int, total: int) -> None:
            counts.append(done)
            show(done, total)

        screen._show_draws_walked = counted
    app.set_focus(None)
    await pilot.press("a")
    return screen


async def show_matched_provisional(pilot: Any) -> None:
    screen = await start_matched_readout(pilot, hold_after_first_draws=True)
    await wait_for(pilot, lambda: "3/20 draws" in status_of(screen, "#readout-status"))
    await settle(pilot)


async def show_matched(pilot: Any) -> None:
    screen = await start_matched_readout(pilot, hold_after_first_draws=False)
    await wait_for(pilot, lambda: len(screen.history) == 1)
    await settle(pilot)


async def show_flipped_examples(pilot: Any) -> None:
    await show_matched(pilot)
    await pilot.press("f")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, FlippedExamplesDialog))
    await settle(pilot)


WALKS = {
    "neurons-specific": show_specific_ranking,
    "matched-provisional": show_matched_provisional,
    "matched": show_matched,
    "flipped-examples": show_flipped_examples,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view", list(WALKS))
def test_evidence_view_snapshot(snap_compare, app_factory, tmp_path, monkeypatch, view: str, size) -> None:
    monkeypatch.chdir(tmp_path)  # session records go to ./runs, named the same on every run

    held: list[threading.Event] = []

    async def walk_and_check(pilot: Any) -> None:
        await WALKS[view](pilot)
        assert_nothing_is_cut(pilot.app, size)
        session = pilot.app.session
        if session is not None and session.partial_gate is not None:
            held.append(session.partial_gate)  # released once pictured, not before

    try:
        assert snap_compare(app_factory(runs_root="runs"), terminal_size=size, run_before=walk_and_check)
    finally:
        for gate in held:
            gate.set()  # the held matched control may finish


# -- Neurons: the ranking score ---------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_specific_score_ranks_and_the_list_says_so(app_factory, size) -> None:
    from labconsole.engine.stage1.session_record import SessionRecord

    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await show_specific_ranking(pilot)
        screen = app.screen
        ranks = [c for c in app.engine.calls if c[0] == "rank"]
        assert ranks[-1] == ("rank", "gradient", "waterbird-land", "global", 10, "specific")
        table = screen.query_one("#ranking", DataTable)
        assert str(list(table.columns.values())[-1].label) == "specific"
        assert "(specific score)" in status_of(screen, "#rank-status")
        assert "specific score" in status_of(screen, "#neuron-detail")
        assert app.last_ranking["score"] == "specific"
        await wait_for(pilot, lambda: app.record is not None)
        await pilot.pause(0.2)
        rankings = SessionRecord(app.record.path).entries("ranking")
        assert rankings[-1]["score"] == "specific" and rankings[-1]["group"] == "waterbird-land"

        # back to the paper score: the header follows
        screen.query_one("#score", Select).value = "paper"
        await wait_for(pilot, lambda: screen.ranking_score == "paper")
        assert str(list(table.columns.values())[-1].label) == "score"


async def test_the_specific_score_without_a_group_is_refused_on_the_screen(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        await pilot.press("2")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#ranking", DataTable).row_count == 10)
        screen.query_one("#score", Select).value = "specific"  # all groups: nothing to compare
        await wait_for(pilot, lambda: "choose a group" in status_of(screen, "#rank-status"))
        assert not any(c[0] == "rank" and c[-1] == "specific" for c in app.engine.calls)


# -- Interventions: the matched control, first provisional, then complete ---------------------------


async def test_the_matched_control_is_provisional_first_then_complete(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_matched_readout(pilot, hold_after_first_draws=True)
        await wait_for(pilot, lambda: "3/20 draws" in status_of(screen, "#readout-status"))
        table = screen.query_one("#readout", DataTable)
        heads = [str(c.label) for c in table.columns.values()]
        assert heads[-2:] == ["matched Δ pp", "p"]
        first = [[str(cell) for cell in table.get_row_at(i)] for i in range(8)]
        assert all(row[5].startswith("≈") and row[6].startswith("≈") for row in first)
        assert "provisional: 3 draws give p ≥ 0.25" in status_of(screen, "#readout-note")
        assert screen.history == []  # recorded once complete
        call = [c for c in app.engine.calls if c[0] == "matched_control"][-1]
        assert call[1] == tuple(MARKED) and call[-2:] == (20, 3)

        # the UI is not blocked meanwhile: keys still work
        await pilot.press("h")
        assert screen.focused is screen.query_one("#history", DataTable)

        app.session.partial_gate.set()
        await wait_for(pilot, lambda: len(screen.history) == 1)
        result = screen.history[-1].result
        found = result.evidence
        assert found is not None and found.draws == 20 and result.control_kind == "layer-matched"
        groups = list(app.session.group_names)
        for i in range(8):
            row = [str(cell) for cell in table.get_row_at(i)]
            split, group = ("train" if i < 4 else "test"), groups[i % 4]
            control = result.control[split]
            assert row[5] == f"{control.delta_pp[group]:+.2f}±{control.spread_pp[group]:.2f}"
            assert row[6] == f"{found.p[split][group]:.3f}"
        note = status_of(screen, "#readout-note")
        verdict = found.signature.verdict
        assert ("seen for" in note) and ("20 draws" in note)
        assert all(g in note for g in ("landbird-water", "waterbird-land"))  # the minority groups
        assert ("not seen" in note) == any(v == "not seen" for g, v in verdict.items() if g in note)


async def test_the_matched_control_counts_its_draws_then_gives_the_verdict(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        shown: list[int] = []
        screen = await start_matched_readout(pilot, hold_after_first_draws=True, counts=shown)
        await wait_for(pilot, lambda: "3/20 draws" in status_of(screen, "#readout-status"))
        status = status_of(screen, "#readout-status")
        assert status.startswith("layer-matched control, ≈ so far") and "chunks" not in status
        calls = [c for c in app.engine.calls if c[0] == "matched_control"]
        assert len(calls) == 1  # one call walks all the draws

        app.session.partial_gate.set()
        await wait_for(pilot, lambda: len(screen.history) == 1)
        assert shown[-1] == 20 and 3 in shown
        assert shown == sorted(set(shown))  # only ever more draws
        assert len([c for c in app.engine.calls if c[0] == "matched_control"]) == 1
        status = status_of(screen, "#readout-status")
        assert "draws" not in status and "Esc" not in status  # done: no count left behind
        note = status_of(screen, "#readout-note")
        assert "signature Δtrain−Δtest < 0 at p < 0.05, 20 draws:" in note and "provisional" not in note


async def test_esc_stops_the_matched_control_and_records_nothing(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await start_matched_readout(pilot, hold_after_first_draws=True)
        await wait_for(pilot, lambda: "3/20 draws" in status_of(screen, "#readout-status"))
        app.set_focus(None)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "stopped waiting" in status_of(screen, "#readout-status"))
        await pilot.pause(0.3)  # the walk, no longer held, returns: its result is dropped
        assert screen.history == [] and "draws" not in status_of(screen, "#readout-status")


async def test_a_matched_readout_is_recorded_with_its_evidence_and_reopened(app_factory, tmp_path) -> None:
    from labconsole.engine.stage1.session_record import SessionRecord

    runs = tmp_path / "runs"
    app = app_factory(runs_root=str(runs))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await start_matched_readout(pilot, hold_after_first_draws=False)
        await wait_for(pilot, lambda: len(screen.history) == 1)
        record_dir = app.record.path
    line = SessionRecord(record_dir).entries("readout")[-1]
    assert line["readout"]["control_kind"] == "layer-matched"
    assert line["readout"]["evidence"]["draws"] == 20
    again = app_factory(runs_root=str(runs))
    async with again.run_test(size=(100, 30)) as pilot:
        await open_session(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: len(again.screen.history) == 1)
        table = again.screen.query_one("#readout", DataTable)
        assert [str(c.label) for c in table.columns.values()][-1] == "p"


# -- the flipped examples ---------------------------------------------------------------------------


async def test_flips_open_a_dialog_with_counts_and_the_minority_training_images(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await show_flipped_examples(pilot)
        dialog = app.screen
        found = app.screen_stack[-2].history[-1].result.evidence  # the Interventions screen under it
        asked = [c for c in app.engine.calls if c[0] == "example_images"][-1]
        train = found.flips["train"]
        # the first flipped training ids of each minority group, as many as two rows hold at 80 columns
        first_ids = [
            i for g in ("landbird-water", "waterbird-land") for i in train[g].to_wrong[:10] + train[g].to_right[:10]
        ]
        assert asked[1] == "train" and list(asked[2]) == first_ids
        counts = dialog.query_one("#flip-counts", Static)
        table = counts.content
        cells = [list(column.cells) for column in table.columns]
        flips_lw = train["landbird-water"]
        assert f"{flips_lw.n_to_wrong}/{flips_lw.n}" in [str(c) for c in cells[2]]
        images = list(dialog.query(".flip-images"))
        assert images
        text = images[0].content
        assert isinstance(text, Text) and "▀" in text.plain
        # the first thumbnail's first cell: its top pixel in front, the one below behind
        picture = example_image(asked[2][0], asked[3])
        style = text.get_style_at_offset(app.console, 0)
        assert style.color is not None and style.color.triplet is not None
        assert tuple(style.color.triplet) == picture[0][0] and tuple(style.bgcolor.triplet) == picture[1][0]
        await pilot.press("escape")
        assert not isinstance(app.screen, FlippedExamplesDialog)


async def test_flips_without_a_matched_control_say_how_to_get_them(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_session(pilot)
        app.set_marked(MARKED)
        await pilot.press("3", "a")
        await wait_for(pilot, lambda: len(app.screen.history) == 1)
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(app.screen, FlippedExamplesDialog)
        assert any("matched control" in str(n.message) for n in notifications(app))


def test_half_blocks_put_two_pixel_rows_in_one_text_row() -> None:
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    lines = half_block_lines([[red, green], [blue, red], [green, green]])
    assert [line.plain for line in lines] == ["▀▀", "▀▀"]
    first = lines[0].spans[0].style
    assert first.color.triplet == red and first.bgcolor.triplet == blue
    last = lines[1].spans[1].style  # an odd last pixel row sits over black
    assert last.color.triplet == green and last.bgcolor.triplet == (0, 0, 0)
    row = thumbnail_rows([[[red] * 2] * 2] * 3, per_row=2)
    assert row.plain == "▀▀ ▀▀\n\n▀▀"  # rows of thumbnails a blank line apart
