"""Neurons: the model's layers, and the critical-neuron ranking for a criterion/group/scope/k.

Every change of a control re-ranks in a worker; a newer ranking supersedes an older one that
is still computing, so keys are never blocked and only the latest answer is shown.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, Static, Tree

from labconsole.ui.engine_port import CRITERIA, RANK_SCORES, SCOPES, LayerInfo, RankedNeuron, SessionPort
from labconsole.ui.screens.base import LabScreen
from labconsole.ui.widgets.busy_line import BusyLine
from labconsole.ui.widgets.form import parse_number
from labconsole.ui.widgets.table_columns import add_sized_columns

ALL_GROUPS = "(all groups)"
NO_SESSION = "No session yet: choose a dataset and checkpoint on Setup (1) and press o."
MAX_ROWS = 500  # a ranking longer than this is summarised, not listed
SCORE_LABELS = {"paper": "paper score", "specific": "specific score"}
# the ranking list's score column says which score ranked it
SCORE_HEADERS = {"paper": "score", "specific": "specific"}
SPECIFIC_NEEDS = (
    "the specific score ranks one group against the others: choose a group and criterion gradient or activation"
)
RankRequest = tuple[str, str | None, str, float, str]  # criterion, group, scope, k, score


def fill_layer_tree(tree: Tree[str], layers: list[LayerInfo]) -> None:
    """Layers grouped by their top-level module (``layer2`` → ``0.conv1``), with neuron counts."""
    total = sum(layer.neurons for layer in layers)
    tree.root.set_label(f"model ({total} neurons)")
    branches: dict[str, list[LayerInfo]] = {}
    for layer in layers:
        branches.setdefault(layer.name.split(".", 1)[0], []).append(layer)
    for top, members in branches.items():
        if len(members) == 1 and members[0].name == top:
            tree.root.add_leaf(f"{top} ({members[0].neurons})", data=top)
            continue
        branch = tree.root.add(f"{top} ({sum(m.neurons for m in members)})", data=None, expand=True)
        for layer in members:
            branch.add_leaf(f"{layer.name.split('.', 1)[-1]} ({layer.neurons})", data=layer.name)
    tree.root.expand()


class NeuronsScreen(LabScreen):
    MODE = "neurons"
    BINDINGS = [
        Binding("m", "toggle_mark", "Mark"),
        Binding("a", "mark_shown", "Mark all shown"),
        Binding("u", "unmark_all", "Unmark all"),
        Binding("f", "focus_table", "Ranking", show=False),
        Binding("t", "focus_tree", "Layers", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ranking: list[RankedNeuron] = []
        self.layer_filter: str | None = None
        self.rank_requests = 0
        self.ranking_text = ""  # what the ranking shown is ("63 neurons by gradient, per-layer, k=7")
        self.ranking_score = "paper"  # the score that ranked the list shown (RANK_SCORES)

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="neurons-body"):
            tree: Tree[str] = Tree("model", id="layers")
            tree.guide_depth = 3  # narrower guides: nested layer names fit in 26 columns
            yield tree
            with Vertical(id="ranking-pane"):
                with Horizontal(id="rank-controls", classes="controls"):
                    yield Select(
                        [(c, c) for c in CRITERIA], value="gradient", allow_blank=False, compact=True, id="criterion"
                    )
                    yield Select([(s, s) for s in SCOPES], value="global", allow_blank=False, compact=True, id="scope")
                    yield Label("k", classes="inline-label")
                    yield Input("10", compact=True, id="k", tooltip="k neurons, or a percentage for top-percent")
                # a row of its own: a group name is never cut
                with Horizontal(id="group-controls", classes="controls"):
                    yield Label("group", classes="inline-label")
                    yield Select([(ALL_GROUPS, "")], value="", allow_blank=False, compact=True, id="group")
                    yield Select(
                        [(SCORE_LABELS[s], s) for s in RANK_SCORES],
                        value="paper",
                        allow_blank=False,
                        compact=True,
                        id="score",
                        tooltip="paper: the group's own score; specific: relative to the other groups'",
                    )
                yield BusyLine(
                    NO_SESSION, show_clock=not self.lab.deterministic, id="rank-status", classes="status-line"
                )
                table: DataTable[str | Text] = DataTable(id="ranking", cursor_type="row", zebra_stripes=True)
                yield table
                yield Static("", id="neuron-detail", classes="detail")

    def on_mount(self) -> None:
        table = self.query_one("#ranking", DataTable)
        table.add_columns("✓", "#", "layer", "neuron", SCORE_HEADERS["paper"])
        self.query_one("#score", Select).styles.width = 18  # "specific score" and its arrow
        self.lab.session_signal.subscribe(self, self._session_changed)
        self.lab.marks_signal.subscribe(self, lambda _marks: self._fill_table())
        self._session_changed(self.lab.session)

    # -- session and layers -------------------------------------------------------------------
    def _session_changed(self, session: SessionPort | None) -> None:
        tree = self.query_one("#layers", Tree)
        tree.clear()
        self.ranking = []
        self.layer_filter = None
        if session is None:
            self.query_one("#rank-status", BusyLine).finish(NO_SESSION)
            self._fill_table()
            return
        fill_layer_tree(tree, self.lab.layers)
        group = self.query_one("#group", Select)
        with self.prevent(Select.Changed):
            group.set_options([(ALL_GROUPS, "")] + [(g, g) for g in session.group_names])
            group.value = ""
        self.rerank()

    @on(Tree.NodeSelected, "#layers")
    def _layer_selected(self, event: Tree.NodeSelected[str]) -> None:
        self.layer_filter = event.node.data  # None for the root: every layer
        self._fill_table()

    # -- ranking ---------------------------------------------------------------------------------
    @on(Select.Changed, "#criterion, #group, #scope, #score")
    @on(Input.Changed, "#k")
    def _controls_changed(self) -> None:
        self.rerank()

    def rank_request(self) -> RankRequest | None:
        criterion = str(self.query_one("#criterion", Select).value)
        score = str(self.query_one("#score", Select).value)
        group = str(self.query_one("#group", Select).value) or None
        scope = str(self.query_one("#scope", Select).value)
        kind = float if scope == "top-percent" else int
        k = parse_number(self.query_one("#k", Input).value, kind=kind, minimum=1e-9)
        if k is None:
            return None
        return criterion, (None if criterion == "magnitude" else group), scope, k, score

    def rerank(self) -> None:
        session = self.lab.session
        if session is None:
            return
        request = self.rank_request()
        status = self.query_one("#rank-status", BusyLine)
        k_field = self.query_one("#k", Input)
        k_field.set_class(request is None, "-invalid")
        if request is None:
            text = k_field.value.strip()
            status.cancel()
            status.finish(
                "k is empty: type how many neurons to rank (a percentage for top-percent)"
                if not text
                else f"k = {text!r}: k must be a positive number (a whole number unless the scope is top-percent)",
                error=True,
            )
            return
        criterion, group, scope, k, score = request
        if score == "specific" and group is None:  # magnitude has no group either
            status.cancel()
            status.finish(SPECIFIC_NEEDS, error=True)
            return
        self.rank_requests += 1
        worker = self.lab.bridge.call(
            "Ranking",
            session.rank,
            criterion,
            group,
            scope,
            k,
            score,
            on_result=lambda ranking: self._show_ranking(request, ranking),
            group="rank",
            on_error=lambda error: status.finish(f"✗ the ranking failed: {error}", error=True),
            on_progress=lambda done, total: status.report(done, total, "groups"),  # the engine's own count
        )
        first = criterion == "gradient" and self.rank_requests == 1
        status.begin(
            f"ranking by {criterion}"
            + (f" on {group}" if group else "")
            + (" (specific score)" if score == "specific" else "")
            + f", {scope}, k={k}"
            + (" (the first gradient ranking computes the gradients: seconds)" if first else ""),
            worker,
        )

    def _show_ranking(self, request: RankRequest, ranking: list[RankedNeuron]) -> None:
        self.ranking = list(ranking)
        criterion, group, scope, k, score = request
        self.ranking_score = score
        more = f" (first {MAX_ROWS} shown)" if len(self.ranking) > MAX_ROWS else ""
        self.ranking_text = (
            f"{len(self.ranking)} neurons by {criterion}"
            + (f" on {group}" if group else "")
            + (" (specific score)" if score == "specific" else "")
            + f", {scope}, k={k}{more}"
        )
        self.lab.last_ranking = {
            "criterion": criterion,
            "group": group,
            "scope": scope,
            "k": k,
            "score": score,
            "neurons": [(layer, index) for layer, index, _ in self.ranking],
        }
        self._record(criterion, group, scope, k, score)
        self.query_one("#rank-status", BusyLine).finish(self.ranking_text)
        self._fill_table()

    def _record(self, criterion: str, group: str | None, scope: str, k: float, score: str) -> None:
        from labconsole.engine.records import Ranking

        fields = {"criterion": criterion, "group": group, "scope": scope, "k": float(k), "score": score}
        ranking = Ranking.model_validate({**fields, "neurons": list(self.ranking)})
        line = self.lab.record_result(lambda record: record.add_ranking(ranking))
        self.lab.write_log(
            f"[info] ranking: {self.ranking_text}" + (f" (session record line {line['seq']})" if line else "")
        )

    def visible_rows(self) -> list[tuple[int, RankedNeuron]]:
        rows = list(enumerate(self.ranking[:MAX_ROWS], start=1))
        if self.layer_filter:
            rows = [(i, row) for i, row in rows if row[0] == self.layer_filter]
        return rows

    def _fill_table(self) -> None:
        """The listed neurons, under columns made again and sized to them (the score's header
        names the ranking score; a column sized later, on the table's idle, would first cut)."""
        table = self.query_one("#ranking", DataTable)
        cursor = table.cursor_row
        marked = set(self.lab.marked)
        rows = [
            (
                Text("✓", style="bold green") if (layer, index) in marked else Text(""),
                str(rank),
                layer,
                str(index),
                f"{score:.4g}",
            )
            for rank, (layer, index, score) in self.visible_rows()
        ]
        table.clear(columns=True)
        add_sized_columns(table, ("✓", "#", "layer", "neuron", SCORE_HEADERS[self.ranking_score]), rows)
        for row in rows:
            table.add_row(*row, key=f"{row[2]}#{row[3]}")
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self._show_count(table.row_count)
        self._show_detail()

    def _show_count(self, shown: int) -> None:
        """The status names what the list shows: a layer's share of the ranking, or why it is empty."""
        status = self.query_one("#rank-status", BusyLine)
        if status.busy or self.lab.session is None or not self.ranking_text:
            return
        if not self.ranking:
            status.finish("no neurons match: a larger k, or another scope")
        elif self.layer_filter:
            layer = self.layer_filter
            status.finish(
                f"{shown} of {len(self.ranking)} ranked neurons are in {layer}"
                if shown
                else f"none of the {len(self.ranking)} ranked neurons is in {layer}: "
                "scope per-layer ranks inside every layer; select the model root for all"
            )
        else:
            status.finish(self.ranking_text)

    @on(DataTable.RowHighlighted, "#ranking")
    def _row_highlighted(self) -> None:
        self._show_detail()

    def highlighted(self) -> tuple[int, RankedNeuron] | None:
        rows = self.visible_rows()
        table = self.query_one("#ranking", DataTable)
        if not rows or table.cursor_row < 0 or table.cursor_row >= len(rows):
            return None
        return rows[table.cursor_row]

    def _show_detail(self) -> None:
        detail = self.query_one("#neuron-detail", Static)
        found = self.highlighted()
        if found is None:
            detail.update("")
            return
        rank, (layer, index, score) = found
        info = next((item for item in self.lab.layers if item.name == layer), None)
        size = f" of {info.neurons} ({info.kind})" if info else ""
        marked = "marked" if (layer, index) in set(self.lab.marked) else "m marks it for Interventions (3)"
        detail.update(
            f"{layer} · neuron {index}{size} · {SCORE_LABELS[self.ranking_score]} {score:.6g} · "
            f"rank {rank} of {len(self.ranking)}\n{marked}"
        )

    # -- marking ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected, "#ranking")
    def action_toggle_mark(self) -> None:
        found = self.highlighted()
        if found is None:
            return
        _, (layer, index, _score) = found
        marked = list(self.lab.marked)
        if (layer, index) in marked:
            marked.remove((layer, index))
        else:
            marked.append((layer, index))
        self.lab.set_marked(marked)

    def action_mark_shown(self) -> None:
        self.lab.set_marked(list(self.lab.marked) + [(layer, index) for _, (layer, index, _) in self.visible_rows()])
        self.notify(f"{len(self.lab.marked)} neurons marked; press 3 for Interventions")

    def action_unmark_all(self) -> None:
        self.lab.set_marked([])

    def action_focus_table(self) -> None:
        self.query_one("#ranking", DataTable).focus()

    def action_focus_tree(self) -> None:
        self.query_one("#layers", Tree).focus()
